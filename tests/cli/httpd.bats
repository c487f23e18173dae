#!/usr/bin/env bats
# gaterun-httpd: every endpoint, every error, the token, limits on
# clients, and many clients at once, against a server on a free loopback
# port started by each test.

load common

H=${GATERUN_HTTPD:-$BATS_TEST_DIRNAME/../../src/gaterun-httpd}

# Start the server with the given options on 127.0.0.1:0 (a free port);
# sets URL, TOKEN (the token file's) and HPID.
start_httpd() {
	TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	printf '%s\n' "$TOKEN" >"$BATS_TEST_TMPDIR/token"
	chmod 600 "$BATS_TEST_TMPDIR/token"
	"$H" "$@" >"$BATS_TEST_TMPDIR/httpd.out" 2>"$BATS_TEST_TMPDIR/httpd.err" &
	HPID=$!
	track "$HPID"
	until_true "grep -q listening '$BATS_TEST_TMPDIR/httpd.out'"
	URL=http://127.0.0.1:$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' \
	    "$BATS_TEST_TMPDIR/httpd.out")
}

with_token() { start_httpd -t "$BATS_TEST_TMPDIR/token" "$@" 127.0.0.1:0; }

# curl printing the body, then the status code on a line of its own.
req() {
	curl -s -w '\n%{http_code}\n' "$@"
}
auth() { req -H "Authorization: Bearer $TOKEN" "$@"; }
code() { tail -n 1 <<<"$output"; }
body() { sed '$d' <<<"$output"; }

@test "httpd: --help and --version; no token and no --public-read is refused" {
	run "$H" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--token-file"* ]]
	run "$H" --version
	[[ "$output" == "gaterun-httpd "* ]]
	run "$H" 127.0.0.1:0
	[ "$status" -eq 125 ]
	[[ "$output" == "gaterun-httpd: no --token-file"* ]]
	run "$H" --bogus
	[ "$status" -eq 125 ]
}

@test "httpd: a token file others can read, a short token, a bad address are refused" {
	echo 0123456789abcdef0123 >tok
	chmod 644 tok
	run "$H" -t tok 127.0.0.1:0
	[ "$status" -eq 125 ]
	[[ "$output" == *"cannot use token file tok: others than its owner"* ]]
	echo short >tok
	chmod 600 tok
	run "$H" -t tok 127.0.0.1:0
	[[ "$output" == *"16 to 255 characters"* ]]
	run "$H" -t missing 127.0.0.1:0
	[[ "$output" == *"No such file"* ]]
	run "$H" -r 127.0.0.1:99999
	[[ "$output" == *"bad port: '99999'"* ]]
	run "$H" -r 'not an address:80'
	[ "$status" -eq 125 ]
	run "$H" -r -W 101 0
	[[ "$output" == *"--warn must be an integer from 0 to 100"* ]]
	run "$H" -r -g a/b 0
	[[ "$output" == *"bad gate name"* ]]
	# A long one is quoted by its first 40 characters (failed before:
	# the whole name).
	run -125 "$H" -r -g "$(printf 'x%.0s' {1..5000})" 0
	[ "$output" = "gaterun-httpd: bad gate name: '$(printf 'x%.0s' {1..40})...'" ]
}

@test "httpd: status is the command line's JSON, behind the token" {
	"$G" --limit 4 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" = 1 ]'
	with_token
	run req "$URL/api/process-status"
	[ "$(code)" = 401 ]
	[ "$(body | jq -r .error)" = "missing or wrong bearer token" ]
	run req -H "Authorization: Bearer wrong$TOKEN" "$URL/api/process-status"
	[ "$(code)" = 401 ]
	run auth "$URL/api/process-status"
	[ "$(code)" = 200 ]
	cli=$("$G" --status --json | jq -c 'del(.timestamp, .slots[].elapsed_seconds)')
	[ "$(body | jq -c 'del(.timestamp, .slots[].elapsed_seconds)')" = "$cli" ]
	[ "$(body | jq -r '.active_processes, .max_allowed, .utilization_percent, .can_start_new' | xargs)" = "1 4 25 true" ]
	[ "$(body | jq '.active_pids | length')" = 1 ]
	run auth -I "$URL/api/process-status"
	[[ "$output" == *"Content-Type: application/json"* ]]
}

@test "httpd: --public-read opens GETs, not POSTs" {
	start_httpd -r 127.0.0.1:0
	run req "$URL/api/process-status"
	[ "$(code)" = 200 ]
	run req -d max_concurrent=3 "$URL/api/process-limit"
	[ "$(code)" = 403 ]
	[[ "$(body | jq -r .error)" == "changes are disabled"* ]]
	[ "$(status_field .max_allowed)" = 5 ]
}

@test "httpd: gates by name, unknown gate 404, bad name 400, unknown parameter 400" {
	"$G" -g build -- true
	"$G" -g test -- true
	with_token -r
	run req "$URL/api/process-status?gate=build"
	[ "$(body | jq -r .gate)" = build ]
	run req "$URL/api/process-status?gate=nope"
	[ "$(code)" = 404 ]
	[ "$(body | jq -r .error)" = "no gate 'nope'" ]
	run req "$URL/api/process-status?gate=a/b"
	[ "$(code)" = 400 ]
	run req "$URL/api/process-status?colour=red"
	[ "$(code)" = 400 ]
	[[ "$(body | jq -r .error)" == *"unknown parameter 'colour'"* ]]
	run req "$URL/api/gates"
	[ "$(code)" = 200 ]
	[ "$(body | jq -r '.gates[].gate' | xargs)" = "build test" ]
	run req "$URL/nowhere"
	[ "$(code)" = 404 ]
	[ "$(body | jq -r .code)" = 404 ]
}

@test "httpd: limit by JSON body, form body and query; the state changes" {
	with_token
	run auth -d '{"max_concurrent": 10}' "$URL/api/process-limit"
	[ "$(code)" = 200 ]
	[ "$(body | jq -c .)" = '{"gate":"default","old_limit":5,"new_limit":10}' ]
	[ "$(status_field .max_allowed)" = 10 ]
	run auth -d max_concurrent=7 "$URL/api/process-limit"
	[ "$(body | jq -r .new_limit)" = 7 ]
	run auth -X POST "$URL/api/process-limit?max_concurrent=6"
	[ "$(body | jq -r .old_limit)" = 7 ]
	"$G" -g other -- true
	run auth -H 'Content-Type: application/json' \
	    -d '{"gate":"other","max_concurrent":2}' "$URL/api/process-limit"
	[ "$(body | jq -c .)" = '{"gate":"other","old_limit":5,"new_limit":2}' ]
	[ "$(status_field .max_allowed other)" = 2 ]
	grep -q "gate 'other': limit 5 -> 2" "$BATS_TEST_TMPDIR/httpd.err"
}

@test "httpd: bad limits, methods, tokens and bodies change nothing" {
	with_token
	for v in 0 -1 abc 1e9 4097 99999999999 1.5 '"10"' '' null; do
		run auth -d "{\"max_concurrent\":$v}" "$URL/api/process-limit"
		[ "$(code)" = 400 ] || { echo "$v: $output"; false; }
		body | jq -e .error >/dev/null
	done
	run auth -d '{}' "$URL/api/process-limit"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "max_concurrent is missing" ]
	run auth -d '{"max_concurrent":3,"max_concurrent":4}' "$URL/api/process-limit"
	[ "$(code)" = 400 ]
	run auth -d '{"max_concurrent":3' "$URL/api/process-limit"
	[ "$(code)" = 400 ]
	run auth -d '{"max_concurrent":3,"gate":"nope"}' "$URL/api/process-limit"
	[ "$(code)" = 404 ]
	run req -d max_concurrent=3 "$URL/api/process-limit"
	[ "$(code)" = 401 ]
	run req -H "Authorization: Bearer ${TOKEN}x" -d max_concurrent=3 "$URL/api/process-limit"
	[ "$(code)" = 401 ]
	run auth -I "$URL/api/process-limit"
	[[ "$output" == *"405 Method Not Allowed"* && "$output" == *"Allow: POST"* ]]
	run auth -X PUT -d max_concurrent=3 "$URL/api/process-limit"
	[ "$(code)" = 405 ]
	run auth -X DELETE "$URL/api/process-status"
	[ "$(code)" = 405 ]
	head -c 5000 /dev/zero | tr '\0' ' ' >big
	run auth --data-binary @big "$URL/api/process-limit?max_concurrent=3"
	[ "$(code)" = 413 ]
	run auth -H 'Transfer-Encoding: chunked' --data-binary @big \
	    "$URL/api/process-limit?max_concurrent=3"
	[ "$(code)" = 413 ]
	[ "$(status_field .max_allowed)" = 5 ]
	[ ! -e "$GATERUN_DIR/nope.gate" ]
}

@test "httpd: kill-all stops every wrapped command and names them" {
	"$G" --limit 3 >/dev/null
	bg "$G" -- sleep 1000
	w1=$BG
	bg "$G" -- sleep 1000
	w2=$BG
	until_true '[ "$(active)" = 2 ]'
	pids=$(status_field '.active_pids | sort | join(" ")')
	with_token
	run auth -X POST "$URL/api/process-kill-all?grace=2"
	[ "$(code)" = 200 ]
	[ "$(body | jq -r .killed_count)" = 2 ]
	[ "$(body | jq -r '.killed_pids | sort | join(" ")')" = "$pids" ]
	wait_status "$w1"
	[ "$status" -eq 143 ]
	wait_status "$w2"
	[ "$status" -eq 143 ]
	[ "$(active)" = 0 ]
	run auth -X POST "$URL/api/process-kill-all?signal=BOGUS"
	[ "$(code)" = 400 ]
	run auth -X POST "$URL/api/process-kill-all?grace=-1"
	[ "$(code)" = 400 ]
	run auth -d '{"gate":"nope"}' "$URL/api/process-kill-all"
	[ "$(code)" = 404 ]
	run req -X POST "$URL/api/process-kill-all"
	[ "$(code)" = 401 ]
}

@test "httpd: health is healthy, then warning above --warn, 503 when unreadable" {
	"$G" --limit 2 >/dev/null
	with_token -r -W 50
	run req "$URL/api/health"
	[ "$(code)" = 200 ]
	[ "$(body | jq -r .status)" = healthy ]
	[ "$(body | jq -r .details.max_allowed)" = 2 ]
	bg "$G" -- sleep 1000
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" = 2 ]'
	run req "$URL/api/health"
	[ "$(code)" = 200 ]
	[ "$(body | jq -r .status)" = warning ]
	[[ "$(body | jq -r .message)" == "gate 'default': 2/2 active (100%, warning above 50%)"* ]]
	stop_bg
	# A symlink where the state directory should be: refused, so 503.
	mv "$GATERUN_DIR" "$BATS_TEST_TMPDIR/real"
	ln -s "$BATS_TEST_TMPDIR/real" "$GATERUN_DIR"
	start_httpd -r 127.0.0.1:0
	run req "$URL/api/health"
	echo "answer: $output"
	cat "$BATS_TEST_TMPDIR/httpd.err"
	[ "$(code)" = 503 ]
	[ "$(body | jq -r .status)" = unavailable ]
	[[ "$(body | jq -r .message)" == *symlink* ]]
}

@test "httpd: /metrics is the command line's Prometheus text" {
	"$G" -g cc -- true
	with_token -r
	run curl -s -o got -w '%{http_code}' "$URL/metrics"
	[ "$output" = 200 ]
	"$G" --all --metrics >want
	diff want got
	run curl -sI "$URL/metrics"
	[[ "$output" == *"Content-Type: text/plain; version=0.0.4"* ]]
	if command -v promtool >/dev/null; then
		promtool check metrics <got
	fi
}

@test "httpd: /events pushes a status object on every change, no polling" {
	with_token -r
	curl -sN "$URL/events" >events &
	cpid=$!
	track "$cpid"
	until_true 'grep -q "^event: status" events'
	grep -q '^retry: 2000' events
	bg "$G" -- sleep 1000
	until_true 'grep "^data: " events | tail -n 1 | cut -c7- | jq -e ".gates[0].active_processes == 1" >/dev/null'
	kill_tree "$BG"
	# Dead for the engine (a SIGKILL lands when the process next runs):
	# the change below is then the one that drops its record.
	until_true '[ "$(active)" -eq 0 ]'
	"$G" --limit 9 >/dev/null
	until_true 'grep "^data: " events | tail -n 1 | cut -c7- | jq -e ".gates[0].max_allowed == 9 and .gates[0].active_processes == 0" >/dev/null'
	# One gate by name; an unknown one is 404 before any stream.
	run req "$URL/events?gate=nope"
	[ "$(code)" = 404 ]
	run curl -s -m 1 -D - "$URL/events?gate=default"
	[[ "$output" == *"Content-Type: text/event-stream"* ]]
	[[ "$output" == *'data: {"schema":1,"gate":"default"'* ]]
}

@test "httpd: the server's CPU time stays flat while streams wait" {
	with_token -r
	curl -sN "$URL/events" >/dev/null &
	track "$!"
	curl -sN "$URL/events" >/dev/null &
	track "$!"
	sleep 0.3
	t0=$(awk '{print $14 + $15}' /proc/"$HPID"/stat)
	sleep 1
	t1=$(awk '{print $14 + $15}' /proc/"$HPID"/stat)
	[ $((t1 - t0)) -le 1 ]
}

@test "httpd: a gate directory made after the server started is watched" {
	rm -rf "$GATERUN_DIR"
	with_token -r
	curl -sN "$URL/events" >events &
	track "$!"
	until_true 'grep -q "^event: status" events'
	"$G" -g late -- true
	until_true 'grep "^data: " events | tail -n 1 | cut -c7- | jq -e ".gates[0].gate == \"late\"" >/dev/null'
}

@test "httpd: a foreign Host on a loopback server is refused (DNS rebinding)" {
	with_token -r
	run req -H 'Host: evil.example:8080' "$URL/api/process-status"
	[ "$(code)" = 403 ]
	run req -H 'Host: localhost:8080' "$URL/api/process-status"
	[ "$(code)" = 200 ]
}

@test "httpd: the dashboard page is self-contained and locked down" {
	with_token
	run curl -s -D headers "$URL/"
	[ "$status" -eq 0 ]
	grep -qi '^Content-Type: text/html' headers
	grep -qi "^Content-Security-Policy: default-src 'none'" headers
	grep -qi '^X-Frame-Options: DENY' headers
	[[ "$output" == *"<title>gaterun</title>"* ]]
	# No external asset: no src= or href= that leaves the page.
	run grep -Eq '(src|href)="(https?:)?//' <<<"$output"
	[ "$status" -eq 1 ]
}

@test "httpd: per-address connection limit and idle timeout" {
	start_httpd -r -p 2 -T 2 127.0.0.1:0
	curl -sN "$URL/events" >/dev/null &
	s1=$!
	track "$s1"
	curl -sN "$URL/events" >/dev/null &
	s2=$!
	track "$s2"
	until_true '[ "$(ss -Htn state established "( sport = :${URL##*:} )" | wc -l)" -ge 2 ]'
	run req -m 2 "$URL/api/health"
	[ "$(code)" = 000 ]
	kill "$s1"
	# A stream's end is seen at its next write: a ping, every -T / 2.
	until_true '[ "$(req -m 2 "$URL/api/health" | tail -n 1)" = 200 ]' 500
	kill "$s2"
	# A client that connects and says nothing is closed after -T.
	run timeout 10 bash -c 'exec 5<>"/dev/tcp/127.0.0.1/$1" && cat <&5' _ "${URL##*:}"
	[ "$status" -eq 0 ]
}

@test "httpd: 1000 requests from 20 clients while wrappers come and go" {
	"$G" --limit 3 >/dev/null
	with_token -r -c 64 -p 64
	(
		for _ in $(seq 30); do
			"$G" -- sleep 0.02 &
		done
		wait
	) &
	track "$!"
	urls=()
	for _ in $(seq 50); do
		urls+=("$URL/api/process-status")
	done
	for c in $(seq 20); do
		curl -s "${urls[@]}" >"out.$c" &
		track "$!"
	done
	for p in "${BG_PIDS[@]:1}"; do
		wait "$p"
	done
	cat out.* >all
	[ "$(wc -l <all)" -eq 1000 ]
	# Every answer valid JSON, none over the limit.
	[ "$(jq -c 'select(.active_processes <= .max_allowed)' all | wc -l)" -eq 1000 ]
	[ "$(active)" = 0 ]
}

@test "httpd: SIGHUP re-reads the token; SIGTERM ends it, streams and all" {
	with_token
	old=$TOKEN
	run auth "$URL/api/health"
	[ "$(code)" = 200 ]
	curl -sN -H "Authorization: Bearer $TOKEN" "$URL/events" >/dev/null &
	track "$!"
	TOKEN=0123456789abcdefNEW
	printf '%s\n' "$TOKEN" >"$BATS_TEST_TMPDIR/token"
	kill -HUP "$HPID"
	until_true 'grep -q "token re-read" "$BATS_TEST_TMPDIR/httpd.err"'
	run auth "$URL/api/health"
	[ "$(code)" = 200 ]
	run req -H "Authorization: Bearer $old" "$URL/api/health"
	[ "$(code)" = 401 ]
	kill -TERM "$HPID"
	wait_status "$HPID"
	[ "$status" -eq 0 ]
}

@test "httpd: the systemd unit verifies and is hardened (exposure under 3)" {
	command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
	sed "s|%%BINDIR%%|$(cd "$(dirname "$H")" && pwd)|" \
	    "$BATS_TEST_DIRNAME/../../systemd/gaterun-httpd.service.in" \
	    >gaterun-httpd.service
	run systemd-analyze verify --man=no ./gaterun-httpd.service
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	run systemd-analyze security --offline=true ./gaterun-httpd.service
	echo "$output" | tail -n 1
	level=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$output")
	awk -v l="$level" 'BEGIN { exit !(l != "" && l < 3) }'
}

@test "httpd: the dashboard in a real browser: shows commands, raises the limit, kills all" {
	if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
		skip "chromium and chromium-driver are not installed"
	fi
	"$G" --limit 3 >/dev/null
	with_token -r
	shot=${GATERUN_ARTIFACTS:-$BATS_TEST_TMPDIR}/dashboard.png
	run timeout 120 python3 "$BATS_TEST_DIRNAME/dashboard.py" "$G" "$URL/" \
	    "$TOKEN" "$shot"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "# $(grep '^screenshot:' <<<"$output")" >&3
	[ "$(status_field .max_allowed)" = 4 ]
	grep -q "gate 'default': limit 3 -> 4" "$BATS_TEST_TMPDIR/httpd.err"
	grep -q "gate 'default': kill-all: signal TERM sent to 2 processes" \
	    "$BATS_TEST_TMPDIR/httpd.err"
}

@test "httpd: a stream of one gate is not pushed when another gate changes" {
	"$G" -g a -- true
	"$G" -g b -- true
	with_token -r
	curl -sN "$URL/events?gate=a" >a.events &
	track "$!"
	curl -sN "$URL/events" >all.events &
	track "$!"
	until_true '[ "$(grep -c "^data: " a.events)" = 1 ] && [ "$(grep -c "^data: " all.events)" = 1 ]'
	"$G" -g b --limit 7 >/dev/null
	until_true 'grep -q "\"max_allowed\":7" all.events'
	sleep 0.2
	[ "$(grep -c '^data: ' a.events)" = 1 ]
	"$G" -g a --limit 6 >/dev/null
	until_true 'grep "^data: " a.events | tail -n 1 | grep -q "\"max_allowed\":6"'
}

@test "httpd: a gate not made yet shows the limit gaterun would give it" {
	GATERUN_LIMIT=7 with_token -r
	run req "$URL/api/process-status"
	[ "$(body | jq -r .max_allowed)" = 7 ]
	run env GATERUN_LIMIT=lots "$H" -r 127.0.0.1:0
	[ "$status" -eq 125 ]
	[[ "$output" == *"GATERUN_LIMIT must be an integer"* ]]
}

@test "httpd: a NUL in a parameter is refused, in the query and in a form body" {
	with_token
	run auth "$URL/api/process-status?gate=default%00x"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "bad request: NUL byte in parameter 'gate'" ]
	run auth "$URL/api/process-status?gate%00x=default"
	[ "$(code)" = 400 ]
	run auth -d 'gate=default%00x&max_concurrent=3' "$URL/api/process-limit"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "bad request: NUL byte in parameter 'gate'" ]
	run auth -X POST "$URL/api/process-limit?max_concurrent=3%00"
	[ "$(code)" = 400 ]
	[ "$(status_field .max_allowed)" = 5 ]
}

@test "httpd: JSON \\u escapes in a body are decoded; \\u0000 and broken surrogates are refused" {
	with_token
	run auth -d '{"\u0067ate":"d\u0065f\u0061ult","max_concurrent":4}' \
	    "$URL/api/process-limit"
	[ "$(code)" = 200 ]
	[ "$(body | jq -c .)" = '{"gate":"default","old_limit":5,"new_limit":4}' ]
	# Decoded to UTF-8 (a pair to one code point): then refused as a name.
	run auth -d '{"gate":"caf\u00e9\ud83d\ude00\u20ac","max_concurrent":3}' \
	    "$URL/api/process-limit"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "bad gate name: 'café😀€'" ]
	# A long one (values stop at 127 bytes): its first 40 characters
	# (failed before: all of them).
	run auth "$URL/api/process-status?gate=$(printf 'x%.0s' {1..120})"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "bad gate name: '$(printf 'x%.0s' {1..40})...'" ]
	for e in '\u0000' '\ud83d' '\ude00' '\ud83dx' '\ud83d\u0041' \
	    '\ud83d\ud83d' '\u12' '\u12g4' '\uD83D\uDE0z'; do
		run auth -d "{\"gate\":\"a${e}b\",\"max_concurrent\":3}" \
		    "$URL/api/process-limit"
		[ "$(code)" = 400 ] || { echo "$e: $output"; false; }
		[[ "$(body | jq -r .error)" == *'\u escape'* ]] ||
		    { echo "$e: $output"; false; }
	done
	# The other escapes of JSON are read too.
	run auth -d '{"signal":"\u0054E\u0052M","grace":"\t1\r\n\b\f"}' \
	    "$URL/api/process-kill-all"
	[ "$(code)" = 400 ]
	[[ "$(body | jq -r .error)" == "grace must be"* ]]
	[ "$(status_field .max_allowed)" = 4 ]
}

@test "httpd: an HTTP/1.1 request without Host, or with two, is 400; HTTP/1.0 needs none" {
	with_token -r
	run req -H 'Host:' "$URL/api/process-status"
	[ "$(code)" = 400 ]
	[ "$(body | jq -r .error)" = "an HTTP/1.1 request needs a Host header" ]
	run req -0 -H 'Host:' "$URL/api/process-status"
	[ "$(code)" = 200 ]
	# Two Host headers (curl sends one only).
	run timeout 10 bash -c 'exec 5<>"/dev/tcp/127.0.0.1/$1" &&
	    printf "GET /api/health HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&5 &&
	    cat <&5' _ "${URL##*:}"
	[[ "$output" == "HTTP/1.1 400 "* ]]
	[[ "$output" == *"needs a Host header, one only"* ]]
}

# Slow clients from address $2 to port $1, one per mode given after: head
# (sends a header line every 0.2 s, never the blank line), body (whole
# headers, then a byte of the body every 0.2 s), keepalive (one whole
# request, then the next one as head). Touches slow.ready once all have
# begun; prints "closed I after S" when the server closes client I, then
# "held I" for each still open and "done" once all are closed or after
# 20 s.
slow_clients() {
	python3 - "$@" <<'PY'
import socket, sys, time
port, src, modes = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
req = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n"
post = (b"POST /api/process-limit HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 100\r\n\r\n")
socks = []
for m in modes:
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    if m == "keepalive":
        s.sendall(req + b"\r\n")
        got = b""
        while b"}\n" not in got:
            got += s.recv(4096)
    s.sendall(post if m == "body" else req)
    socks.append({"s": s, "m": m, "t0": time.monotonic(), "open": True})
open("slow.ready", "w").close()
start = time.monotonic()
while time.monotonic() < start + 20 and any(c["open"] for c in socks):
    for i, c in enumerate(socks):
        if not c["open"]:
            continue
        try:
            c["s"].setblocking(False)
            try:
                if c["s"].recv(4096) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                pass
            c["s"].setblocking(True)
            c["s"].sendall(b"x" if c["m"] == "body" else b"X-Slow: 1\r\n")
        except OSError:
            c["open"] = False
            print("closed %d after %.1f" % (i, time.monotonic() - c["t0"]),
                  flush=True)
    time.sleep(0.2)
for i, c in enumerate(socks):
    if c["open"]:
        print("held %d" % i)
print("done")
PY
}

@test "httpd: a request sent slowly is cut off after --request-timeout; others are served meanwhile" {
	start_httpd -r -p 4 -T 3 -R 2 127.0.0.1:0
	curl -sN "$URL/events" >events &
	spid=$!
	track "$spid"
	slow_clients "${URL##*:}" 127.0.0.2 head head body keepalive >slow.out &
	track "$!"
	until_true '[ -e slow.ready ]'
	# A client from another address is answered while they are held.
	run req -m 2 "$URL/api/health"
	[ "$(code)" = 200 ]
	[ ! -s slow.out ]
	until_true 'grep -q done slow.out' 2500
	cat slow.out
	# Each kept sending (the idle timeout never came), each was cut at -R.
	[ "$(grep -c '^closed' slow.out)" = 4 ]
	awk '/^closed/ { if ($4 < 1.8 || $4 > 4) exit 1 }' slow.out
	grep -q "that sent no whole request within 2 s" "$BATS_TEST_TMPDIR/httpd.err"
	# The event stream, whose request was whole, was not cut.
	kill -0 "$spid"
	[ "$(grep -c '^event: status' events)" -ge 1 ]
}

@test "httpd: when an address's share or the server is full, the connection waiting longest for a request makes room" {
	# The issue's case: one address (on loopback, every local client)
	# holds all its connections with requests that never end.
	start_httpd -r -p 4 -c 8 -T 30 -R 30 127.0.0.1:0
	slow_clients "${URL##*:}" 127.0.0.1 head head head head >slow.out &
	track "$!"
	until_true '[ -e slow.ready ]'
	run req -m 2 "$URL/api/health"
	[ "$(code)" = 200 ]
	until_true 'grep -q "^closed" slow.out'
	[ "$(grep '^closed' slow.out | cut -d' ' -f2)" = 0 ]
	stop_bg
	# The whole server full, from another address.
	rm slow.ready "$BATS_TEST_TMPDIR/httpd.out"
	start_httpd -r -p 8 -c 4 -T 30 -R 30 127.0.0.1:0
	slow_clients "${URL##*:}" 127.0.0.2 head head head head >slow.out &
	track "$!"
	until_true '[ -e slow.ready ]'
	run req -m 2 "$URL/api/health"
	[ "$(code)" = 200 ]
	until_true 'grep -q "^closed" slow.out'
	[ "$(grep '^closed' slow.out | cut -d' ' -f2)" = 0 ]
	# Streams being answered are never closed for room: a new one is.
	stop_bg
	rm "$BATS_TEST_TMPDIR/httpd.out"
	start_httpd -r -p 2 -c 8 -T 30 -R 30 127.0.0.1:0
	curl -sN "$URL/events" >/dev/null &
	track "$!"
	curl -sN "$URL/events" >/dev/null &
	track "$!"
	until_true '[ "$(ss -Htn state established "( sport = :${URL##*:} )" | wc -l)" -ge 2 ]'
	run req -m 2 "$URL/api/health"
	[ "$(code)" = 000 ]
}
