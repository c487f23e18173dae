# bash completion for gaterun(1)
# shellcheck shell=bash

# Gate names: the state files in the state directory.
_gaterun_gates()
{
	local dir=${GATERUN_DIR:-}
	if [[ -z $dir ]]; then
		if ((EUID == 0)); then
			dir=/run/gaterun
		else
			dir=/tmp/gaterun-$EUID
		fi
	fi
	local f
	for f in "$dir"/*.gate; do
		[[ -e $f ]] || continue
		f=${f##*/}
		printf '%s\n' "${f%.gate}"
	done
}

_gaterun()
{
	local cur prev words cword
	_init_completion || return

	local i
	# After the command (or --), complete the command's own arguments.
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--)
			_command_offset $((i + 1))
			return
			;;
		-g | --gate | -w | --wait | --timeout | -E | --conflict-exit-code | \
			-l | --limit | -S | --signal | -G | --grace | -a | --is-active | \
			-W | --warn | -C | --crit | -M | --max-wait)
			((i++))
			;;
		-*) ;;
		*)
			_command_offset "$i"
			return
			;;
		esac
	done

	case $prev in
	-g | --gate | -R | --parent)
		mapfile -t COMPREPLY < <(compgen -W "$(_gaterun_gates)" -- "$cur")
		return
		;;
	-S | --signal)
		mapfile -t COMPREPLY < <(compgen -W "$(compgen -A signal | sed 's/^SIG//')" -- "${cur#SIG}")
		return
		;;
	-a | --is-active)
		_pids
		return
		;;
	-w | --wait | --timeout | -E | --conflict-exit-code | -l | --limit | -G | --grace | \
		-N | --weight | -p | --priority | -u | --unique | -U | --unique-join | \
		-F | --min-mem | -O | --max-load | \
		-W | --warn | -C | --crit | -M | --max-wait | -e | --lease)
		return
		;;
	-I | --max-pressure)
		mapfile -t COMPREPLY < <(compgen -W 'memory: cpu: io:' -- "$cur")
		compopt -o nospace 2>/dev/null
		return
		;;
	esac

	# -J's style is attached: --jobserver=fifo ('=' may break the word).
	if [[ $cur == --jobserver=* ]]; then
		mapfile -t COMPREPLY < <(compgen -P --jobserver= -W 'auto pipe fifo' -- "${cur#--jobserver=}")
		return
	elif [[ $cur == = && $prev == --jobserver ]] ||
		[[ $prev == = && ${words[cword - 2]} == --jobserver ]]; then
		mapfile -t COMPREPLY < <(compgen -W 'auto pipe fifo' -- "${cur#=}")
		return
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W '-g --gate -n --no-wait -w --wait
		    -E --conflict-exit-code -x --exec -J --jobserver -N --weight -p --priority
		    -u --unique -U --unique-join -F --min-mem -I --max-pressure -O --max-load -e --lease
		    -s --status -j --json -l --limit
		    -K --kill-all -S --signal -G --grace -a --is-active
		    -A --all -c --check -W --warn -C --crit -M --max-wait -m --metrics -L --log --watch -P --persist -R --parent
		    -h --help -V --version --' -- "$cur")
		return
	fi
	_command_offset "$cword"
} &&
	complete -F _gaterun gaterun
