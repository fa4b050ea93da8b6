package certs

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Status lists the certificates for GET /api/certs: one entry per tls=auto
// host of the table (source "file" when a user certificate covers it), one
// per other name the manager obtained on demand (wildcard routes), and one
// per name of each user certificate not listed yet; a user pair that cannot
// be used is listed under its file name with its error. Sorted by host.
func (m *Manager) Status() []Status {
	t, files := m.table.Load(), m.files.Load()
	out := []Status{}
	listed := map[string]bool{}
	m.mu.Lock()
	hosts := t.TLSHosts()
	for h := range m.hosts {
		if t.TLSHost(h) && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		if c := files.match(h); c != nil {
			out = append(out, Status{Host: h, Source: SourceFile, NotAfter: c.notAfter})
			listed[h] = true
			continue
		}
		s := Status{Host: h, Source: SourceACME}
		if st := m.hosts[h]; st != nil {
			if st.ready {
				s.NotAfter = st.notAfter
			}
			s.Error = st.err
		}
		out = append(out, s)
	}
	m.mu.Unlock()
	if files != nil {
		for _, c := range files.pairs {
			if c.err != nil {
				out = append(out, Status{Host: c.name, Source: SourceFile, Error: c.err.Error()})
				continue
			}
			for _, n := range c.names {
				if !listed[n] {
					listed[n] = true
					out = append(out, Status{Host: n, Source: SourceFile, NotAfter: c.notAfter})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Source, b.Source))
	})
	return out
}

var expiryDesc = prometheus.NewDesc(
	"ingress_cert_expiry_timestamp_seconds",
	"Expiry time (NotAfter, Unix seconds) of the certificate served for a host.",
	[]string{"host", "source"}, nil,
)

// collector exports Status as the expiry gauge, computed at scrape time.
type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.Status() {
		if s.NotAfter.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue,
			float64(s.NotAfter.Unix()), s.Host, s.Source)
	}
}
