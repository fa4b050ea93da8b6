// Command ingress is a Docker Swarm ingress controller: it routes HTTP and
// HTTPS traffic to Swarm services according to their labels (docs/labels.md).
// Its commands and roles are described in docs/roles.md, its settings in
// docs/settings.md, its admin endpoints in docs/admin-api.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// The image is built FROM scratch: bundle CA roots for the ACME directory.
	_ "golang.org/x/crypto/x509roots/fallback"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errReported means the failure was already printed; only the exit code is left.
var errReported = errors.New("reported")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "ingress:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: ingress [serve|controller|edge|check|explain|import-nginx|healthcheck|version] [flags]

  serve        run the ingress in one process (the default): a one-node
               cluster, or managers only
  controller   on managers: read Docker, obtain certificates and send them
               with the route table to the edges; no public port
  edge         on every node: serve HTTP and HTTPS from what the controllers
               send; no Docker socket
  check        print the route table and every label error; exit 1 on any error
  explain URL  which route serves URL and why, the steps that apply, the
               upstreams; for no match, the nearest routes
  import-nginx translate Nginx configuration files into labels (--routes-file,
               --allow-partial); see docs/import-nginx.md
  healthcheck  exit 0 when the local admin /readyz answers 200
  version      print the version

Every setting is an INGRESS_* environment variable or the flag of the same
name in lower-kebab case (INGRESS_HTTP_ADDR is --ingress-http-addr).
Run 'ingress serve -h' to list them.
`

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stderr, stdout)
	case "controller":
		return runController(ctx, args, getenv, stderr, stdout)
	case "edge":
		return runEdge(ctx, args, getenv, stderr, stdout)
	case "check":
		return runCheck(ctx, args, getenv, stdout, stderr)
	case "explain":
		return runExplain(ctx, args, getenv, stdout, stderr)
	case "import-nginx":
		return runImportNginx(ctx, args, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args, getenv, stderr)
	case "version":
		fmt.Fprintln(stdout, "ingress", version)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
