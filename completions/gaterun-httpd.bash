# bash completion for gaterun-httpd(8)
# shellcheck shell=bash

_gaterun_httpd()
{
	# shellcheck disable=SC2034  # set by _init_completion
	local cur prev words cword
	_init_completion || return

	case $prev in
	-t | --token-file)
		_filedir
		return
		;;
	-g | --gate)
		# Gate names: gaterun's completion lists them; load it if need be.
		if ! declare -F _gaterun_gates >/dev/null; then
			local f
			for f in "${BASH_SOURCE[0]%/*}"/gaterun{,.bash}; do
				# shellcheck disable=SC1090
				[[ -f $f ]] && . "$f" && break
			done
		fi
		declare -F _gaterun_gates >/dev/null &&
			mapfile -t COMPREPLY < <(compgen -W "$(_gaterun_gates)" -- "$cur")
		return
		;;
	-W | --warn | -G | --grace | -c | --max-connections | -p | --per-ip | \
		-T | --timeout | -R | --request-timeout)
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W '-t --token-file -r --public-read
		    -g --gate -W --warn -G --grace -c --max-connections -p --per-ip
		    -T --timeout -R --request-timeout -h --help -V --version' \
		    -- "$cur")
		return
	fi
	# [ADDR:]PORT
	mapfile -t COMPREPLY < <(compgen -W '127.0.0.1:8080 [::1]:8080' -- "$cur")
} &&
	complete -F _gaterun_httpd gaterun-httpd
