package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// readTable reads the route table once, from Docker and the routes file,
// with the settings in values, as `ingress check` and `ingress explain` do.
func readTable(ctx context.Context, values map[string]string, stderr io.Writer) (*route.Table, error) {
	cfg, err := parseConfig(values, roleCheck)
	if err != nil {
		return nil, err
	}
	docker, err := discovery.NewClient()
	if err != nil {
		return nil, fmt.Errorf("docker client (check DOCKER_HOST): %w", err)
	}
	defer docker.Close()
	return discovery.Check(ctx, discovery.Config{
		Docker:         docker,
		LabelPrefix:    cfg.LabelPrefix,
		Networks:       cfg.Networks,
		NetworkSetting: "INGRESS_NETWORK",
		RoutesFile:     cfg.RoutesFile,
		Logger:         newLogger(cfg, stderr),
	})
}

// runCheck prints the route table and every error, changing nothing, and
// fails when there is any error.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	values, rest, err := loadSettings("ingress check", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	table, err := readTable(ctx, values, stderr)
	if err != nil {
		return err
	}
	printTable(stdout, table)
	if len(table.Errors) > 0 || slices.ContainsFunc(table.Routes, func(r *route.Route) bool { return r.Blocked != "" }) {
		return fmt.Errorf("%d error(s) in the route table: %w", len(table.Errors), errReported)
	}
	return nil
}

func printTable(w io.Writer, t *route.Table) {
	v := t.View()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROUTE\tHOSTS\tPATH\tMODE\tNETWORK\tUPSTREAMS\tTLS\n")
	for _, r := range v.Routes {
		ups := strings.Join(r.Upstreams, ",")
		switch {
		case r.Blocked != "":
			ups = "BLOCKED (answers 503)"
		case ups == "":
			ups = "(no running task)"
		}
		network := r.Network
		if network == "" {
			network = "-"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, r.Route, strings.Join(r.Hosts, ","), r.Path, r.UpstreamMode, network, ups, r.TLS)
	}
	tw.Flush()
	for _, r := range v.Routes {
		if r.Blocked != "" {
			fmt.Fprintf(w, "BLOCKED %s/%s (hosts %s, path %s answer 503): %s\n", r.Service, r.Route, strings.Join(r.Hosts, ","), r.Path, r.Blocked)
		}
	}
	printBalance(w, v)
	printHealth(w, v)
	printAccess(w, v)
	fmt.Fprintf(w, "\n%d route(s), %d error(s)\n", len(v.Routes), len(v.Errors))
	for _, e := range v.Errors {
		fmt.Fprintf(w, "ERROR service %s, label %s: %s\n", e.Service, e.Label, e.Error)
	}
}
