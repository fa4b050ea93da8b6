package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginximport"
)

// runImportNginx translates Nginx configuration files into labels (see
// docs/import-nginx.md). It fails when a directive was not carried over,
// unless --allow-partial.
func runImportNginx(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingress import-nginx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	routesFile := fs.Bool("routes-file", false, "print a routes file (INGRESS_ROUTES_FILE) instead of stack-file labels")
	partial := fs.Bool("allow-partial", false, "exit 0 even when some directives were not carried over")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ingress import-nginx [--routes-file] [--allow-partial] FILE...")
		fmt.Fprintln(stderr, "\nTranslates Nginx configuration (following include) into ingress labels.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import-nginx: name at least one Nginx configuration file")
	}
	var files [][]*nginxconf.Directive
	for _, name := range fs.Args() {
		ds, err := nginxconf.Parse(name, nil)
		if err != nil {
			return fmt.Errorf("import-nginx: %w", err)
		}
		files = append(files, ds)
	}
	res := nginximport.Translate(files, nginximport.Options{})
	if *routesFile {
		nginximport.WriteRoutesFile(stdout, res)
	} else {
		nginximport.WriteStack(stdout, res)
	}
	if res.Partial() && !*partial {
		fmt.Fprintf(stderr, "ingress import-nginx: %d directive(s) not carried over (listed at the end of the output); --allow-partial accepts that\n", len(res.Dropped))
		return errReported
	}
	return nil
}
