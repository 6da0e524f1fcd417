#!/bin/sh
# The harness image's entrypoint: `docker run … runbook-harness:local COMMAND [ARGUMENTS…]` runs the installed
# entry point runbook-COMMAND with those arguments (so `conformance --base-url URL` is `runbook-conformance
# --base-url URL`), with its output, reports and exit code. Only the commands that need no checkout are offered:
# the ones that start an embedded stack or read alembic scripts need a checkout (docs/INSTALL.md).
set -eu

COMMANDS="conformance health payload-guards bench chaos"

usage() {
    cat <<USAGE
usage: docker run --rm --network host -e API_KEY [-v "\$PWD/reports:/harness/reports"] IMAGE COMMAND [ARGUMENTS...]

Runs the executable runbook's harnesses against a deployment given by --base-url (the API key from the
environment, -e API_KEY; never on the command line). Reports are written under /harness (the working
directory): mount a directory on /harness/reports to keep them.

commands (each is the installed runbook-COMMAND; COMMAND --help for its options):
  conformance     remote conformance: runbook-conformance --base-url URL [--requirement ID ...]
  health          the runtime health check: runbook-health --base-url URL
  payload-guards  the payload-guard check: runbook-payload-guards --base-url URL
  bench           the query benchmark, remote profiles: -e BENCH_BASE_URL … runbook-bench --profile served
  chaos           list or export the drills: runbook-chaos list | export NAME ...

commit: ${RUNBOOK_COMMIT:-unknown}
USAGE
}

case "${1:-}" in
    "" | -h | --help | help)
        usage
        exit 0
        ;;
esac

command=$1
shift
for known in $COMMANDS; do
    if [ "$command" = "$known" ]; then
        exec "runbook-$command" "$@"
    fi
done
echo "error: unknown command '$command'; one of: $COMMANDS" >&2
exit 2  # usage, as in the shared exit-code table (README.md)
