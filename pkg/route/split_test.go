package route

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func weighted(r *Route, w int) *Route {
	r.Weight, r.Weighted = w, true
	return r
}

// TestSplit: routes of equal priority on one host and path share it when
// one of them sets a weight; the rest (lower priority, or no weight at all)
// still conflict; a blocked route wins alone.
func TestSplit(t *testing.T) {
	blue := weighted(rt("blue", "default", []string{"a.com", "b.com"}, "/", 0, 1), 90)
	green := weighted(rt("green", "default", []string{"a.com"}, "/", 0, 2), 10)
	plain := rt("plain", "default", []string{"a.com"}, "/", 0, 3) // no weight: DefaultWeight
	low := weighted(rt("low", "default", []string{"a.com"}, "/", -1, 0), 500)
	x := rt("x", "default", []string{"c.com"}, "/", 0, 1)
	y := rt("y", "default", []string{"c.com"}, "/", 0, 2) // no weight on either: a conflict
	guard := weighted(rt("guard", "default", []string{"d.com"}, "/", 0, 1), 50)
	locked := rt("locked", "default", []string{"d.com"}, "/", 0, 2)
	locked.Blocked = "ingress.allow: bad"
	routes := []*Route{blue, green, plain, low, x, y, guard, locked}
	for range 10 {
		rand.Shuffle(len(routes), func(i, j int) { routes[i], routes[j] = routes[j], routes[i] })
		tbl := New(Snapshot{Routes: routes, HostLabel: testHostLabel})

		r, s := tbl.Lookup("a.com", "/x")
		if r != blue || s == nil {
			t.Fatalf("a.com: Lookup = %v, %v; want blue and a split", r, s)
		}
		if got := members(s); got != "blue:90 green:10 plain:100" {
			t.Fatalf("a.com split = %s", got)
		}
		if r, s := tbl.Lookup("b.com", "/"); r != blue || s != nil {
			t.Fatalf("b.com: Lookup = %v, %v; want blue alone", r, s)
		}
		if r, s := tbl.Lookup("c.com", "/"); r != x || s != nil {
			t.Fatalf("c.com: Lookup = %v, %v; want x alone (no weight: a conflict)", r, s)
		}
		if r, s := tbl.Lookup("d.com", "/"); r != locked || s != nil {
			t.Fatalf("d.com: Lookup = %v, %v; want the blocked route alone", r, s)
		}
		var lost []string
		for _, e := range tbl.Errors {
			lost = append(lost, e.Service)
		}
		if got := strings.Join(lost, ","); got != "guard,low,y" {
			t.Fatalf("conflicts name %s, want guard,low,y: %+v", got, tbl.Errors)
		}
		v := tbl.View()
		if len(v.Splits) != 1 || v.Splits[0].Host != "a.com" || len(v.Splits[0].Members) != 3 {
			t.Fatalf("View splits = %+v", v.Splits)
		}
		b, _ := json.Marshal(v)
		if !strings.Contains(string(b), `"weight":90`) || !strings.Contains(string(b), `"splits":[{"host":"a.com","path":"/","members":[{"service":"blue"`) {
			t.Fatalf("view JSON lacks the weights: %s", b)
		}
	}
}

func members(s *Split) string {
	var out []string
	for i, r := range s.Routes {
		out = append(out, r.Service+":"+itoa(s.Weights[i]))
	}
	return strings.Join(out, " ")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
