#!/usr/bin/env bash
# Apply a project's campaigns, then rewrite its HTML report, for cron:
#
#   */15 * * * * /srv/labels/examples/cron/turkform-cron.sh /srv/labels /var/www/html/labels.html >>/var/log/turkform.log 2>&1
#
# Usage: turkform-cron.sh PROJECT_DIR REPORT_FILE [GLOBAL FLAGS...]
# Extra arguments go to both commands, e.g. `--target production` (production is only ever
# applied when the flag is on the command line).
#
# The report is written even when apply fails (MTurk unreachable, budget reached, another run
# holding the lock), so the page always shows what state knows; the script still exits with
# apply's code so cron's mail or the log says something went wrong. The report replaces the
# file atomically: a web server serving it never sends half a page.
set -uo pipefail

project="${1:?usage: turkform-cron.sh PROJECT_DIR REPORT_FILE [GLOBAL FLAGS...]}"
report="${2:?usage: turkform-cron.sh PROJECT_DIR REPORT_FILE [GLOBAL FLAGS...]}"
shift 2
case "$report" in
  /*) ;;
  *) report="$PWD/$report" ;;
esac

cd "$project" || exit 1
# Wait up to 5 minutes for a previous run still holding the state lock, then give up (exit 1).
turkform "$@" apply --auto-approve --lock-timeout 5m
applied=$?
turkform "$@" report --output "$report" || exit $?
exit "$applied"
