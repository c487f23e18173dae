# fish completion for gaterun-httpd(8)

complete -c gaterun-httpd -f -a '127.0.0.1:8080 [::1]:8080' -d 'listen address'
complete -c gaterun-httpd -s t -l token-file -r -F -d 'bearer token file (mode 600)'
complete -c gaterun-httpd -s r -l public-read -d 'GETs need no token'
complete -c gaterun-httpd -s g -l gate -x -a '(functions -q __gaterun_gates; or source (status dirname)/gaterun.fish 2>/dev/null; __gaterun_gates 2>/dev/null)' -d 'gate of requests that name none'
complete -c gaterun-httpd -s W -l warn -x -d '/api/health warning threshold, percent'
complete -c gaterun-httpd -s G -l grace -x -d 'kill-all: seconds before SIGKILL'
complete -c gaterun-httpd -s c -l max-connections -x -d 'connections at once'
complete -c gaterun-httpd -s p -l per-ip -x -d 'connections at once from one address'
complete -c gaterun-httpd -s T -l timeout -x -d 'close a connection idle this long'
complete -c gaterun-httpd -s R -l request-timeout -x -d 'close a connection without a whole request this long'
complete -c gaterun-httpd -s h -l help -d 'show help'
complete -c gaterun-httpd -s V -l version -d 'show version'
