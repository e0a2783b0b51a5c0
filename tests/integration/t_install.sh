# make install / uninstall with PREFIX, SYSCONFDIR and DESTDIR; the
# installed unit passes `systemd-analyze verify` and rates 3.0 or lower in
# `systemd-analyze security --offline=true`; the man page renders with
# `man -l`; the alert rules pass `promtool check rules`.
. "$(dirname "$0")/lib.sh"
set -e
for tool in systemd-analyze man promtool; do
    command -v "$tool" >/dev/null || fail "$tool is missing (make deps)"
done

# an install into a prefix, with the unit's paths pointing into it
P="$T/prefix"
run make -s install PREFIX="$P" SYSCONFDIR="$T/etc"
expect_rc 0
for f in bin/sluice lib/systemd/system/sluice.service share/man/man1/sluice.1 \
         share/doc/sluice/operations.md share/doc/sluice/feature-pipeline.yaml \
         share/doc/sluice/grafana/sluice.json; do
    [ -f "$P/$f" ] || fail "make install did not install $f"
done
[ -f "$T/etc/sluice/feature-pipeline.yaml" ] || fail "no example job in SYSCONFDIR"
[ "$(stat -c %a "$T/etc/sluice/sluice.env")" = 600 ] || fail "sluice.env is not 0600"
"$P/bin/sluice" --version | grep -q '^sluice ' || fail "the installed binary does not run"
U="$P/lib/systemd/system/sluice.service"
grep -q "^ExecStart=$P/bin/sluice run -c $T/etc/sluice/feature-pipeline.yaml\$" "$U" ||
    fail "ExecStart not adjusted: $(grep ExecStart= "$U")"

# the unit: verify is clean (it checks the binary and the man page exist)
run env MANPATH="$P/share/man" systemd-analyze verify "$U"
expect_rc 0
[ -z "$OUT$ERR" ] || fail "systemd-analyze verify is not clean:
$OUT$ERR"
for d in Type=notify WatchdogSec= ExecReload= Restart=on-failure StateDirectory=sluice \
         TimeoutStopSec= NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
         PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
         ProtectKernelLogs=yes "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
         SystemCallFilter=@system-service MemoryDenyWriteExecute=yes "CapabilityBoundingSet=\$" \
         DynamicUser=yes EnvironmentFile=; do
    grep -q "^$d" "$U" || fail "the unit lacks $d"
done
stop=$(sed -n 's/^TimeoutStopSec=//p' "$U")
[ "$stop" -gt 10 ] || fail "TimeoutStopSec=$stop is not above the 10 s graceful stop"
run systemd-analyze security --offline=true "$U"
rating=$(sed -n 's/.*Overall exposure level for sluice.service: \([0-9.]*\).*/\1/p' "$T/out")
[ -n "$rating" ] || fail "no rating: $OUT $ERR"
echo "systemd-analyze security: $rating"
awk -v r="$rating" 'BEGIN { exit !(r <= 3.0) }' || fail "exposure $rating is above 3.0"

# the man page
run env MANWIDTH=80 man -l "$P/share/man/man1/sluice.1"
expect_rc 0
expect_out "SIGHUP"
expect_out "POST /savepoint"
run groff -man -ww -z docs/sluice.1
expect_rc 0
[ -z "$ERR" ] || fail "groff warns about the man page: $ERR"

# the alert rules
run promtool check rules packaging/prometheus/sluice-alerts.yml
expect_rc 0

# DESTDIR staging; an operator's edited job file survives a reinstall
R="$T/root"
run make -s install DESTDIR="$R"
expect_rc 0
[ -x "$R/usr/local/bin/sluice" ] && [ -f "$R/etc/sluice/feature-pipeline.yaml" ] &&
    [ -f "$R/usr/local/lib/systemd/system/sluice.service" ] || fail "DESTDIR layout"
echo "# edited" >> "$R/etc/sluice/feature-pipeline.yaml"
run make -s install DESTDIR="$R"
expect_rc 0
tail -1 "$R/etc/sluice/feature-pipeline.yaml" | grep -q "# edited" || fail "reinstall overwrote the job"
run make -s uninstall DESTDIR="$R"
expect_rc 0
[ ! -e "$R/usr/local/bin/sluice" ] && [ ! -e "$R/usr/local/lib/systemd/system/sluice.service" ] ||
    fail "uninstall left files"
[ -f "$R/etc/sluice/feature-pipeline.yaml" ] || fail "uninstall removed the job file"
