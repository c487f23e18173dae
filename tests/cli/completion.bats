#!/usr/bin/env bats
# The bash completion offers every option, gate names, signals and the
# wrapped command's own completion.

load common

complete_words() {
	# shellcheck disable=SC1091
	source /usr/share/bash-completion/bash_completion
	# shellcheck disable=SC1091
	source "$BATS_TEST_DIRNAME/../../completions/gaterun.bash"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_gaterun gaterun "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
	printf '%s\n' "${COMPREPLY[@]}"
}

need_completion() {
	[ -f /usr/share/bash-completion/bash_completion ] || skip "bash-completion not installed"
}

@test "every long option of --help is completed" {
	need_completion
	out=$(complete_words gaterun --)
	for o in $("$G" --help | grep -o -- '--[a-z-]*' | sort -u); do
		[[ $'\n'"$out"$'\n' == *$'\n'"$o"$'\n'* ]] || { echo "missing $o"; false; }
	done
}

@test "gate names come from the state directory" {
	need_completion
	"$G" -g alpha -- true
	"$G" -g beta -- true
	out=$(complete_words gaterun -g '')
	[ "$(sort <<<"$out" | tr '\n' ' ')" = "alpha beta " ]
	out=$(complete_words gaterun --gate al)
	[ "$out" = alpha ]
}

@test "signal names for --signal" {
	need_completion
	out=$(complete_words gaterun --kill-all --signal TE)
	[ "$out" = TERM ]
}

@test "after -- the command is completed" {
	need_completion
	out=$(complete_words gaterun -- gaterun-no-such-prefix)
	[ -z "$out" ]
	out=$(complete_words gaterun -g x -- bat)
	[[ $'\n'"$out"$'\n' == *$'\n'bats$'\n'* ]]
}

@test "the fish completion loads and offers the options" {
	command -v fish >/dev/null || skip "fish not installed"
	run fish -c "source $BATS_TEST_DIRNAME/../../completions/gaterun.fish; complete -C 'gaterun --met'"
	[ "$status" -eq 0 ]
	[[ "$output" == *"--metrics"* ]]
}

@test "the zsh completion loads" {
	command -v zsh >/dev/null || skip "zsh not installed"
	run zsh -c "autoload -U compinit && compinit -u && fpath=($BATS_TEST_DIRNAME/../../completions \$fpath) && autoload -U _gaterun && whence -w _gaterun"
	[ "$status" -eq 0 ]
	[[ "$output" == *"function"* ]]
}

complete_httpd() {
	# shellcheck disable=SC1091
	source /usr/share/bash-completion/bash_completion
	# shellcheck disable=SC1091
	source "$BATS_TEST_DIRNAME/../../completions/gaterun-httpd.bash"
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_gaterun_httpd gaterun-httpd "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "gaterun-httpd: every long option is completed, gate names too" {
	need_completion
	[ -x "${GATERUN_HTTPD:-}" ] || skip "gaterun-httpd not built"
	out=$(complete_httpd gaterun-httpd --)
	for o in $("$GATERUN_HTTPD" --help | grep -o -- '--[a-z-]*' | sort -u); do
		[[ $'\n'"$out"$'\n' == *$'\n'"$o"$'\n'* ]] || { echo "missing $o"; false; }
	done
	"$G" -g alpha -- true
	out=$(complete_httpd gaterun-httpd -g al)
	[ "$out" = alpha ]
}

@test "gaterun-httpd: the fish and zsh completions load" {
	if command -v fish >/dev/null; then
		run fish -c "source $BATS_TEST_DIRNAME/../../completions/gaterun-httpd.fish; complete -C 'gaterun-httpd --per'"
		[[ "$output" == *"--per-ip"* ]]
	fi
	if command -v zsh >/dev/null; then
		run zsh -c "autoload -U compinit && compinit -u && fpath=($BATS_TEST_DIRNAME/../../completions \$fpath) && autoload -U _gaterun-httpd && whence -w _gaterun-httpd"
		[[ "$output" == *"function"* ]]
	fi
}
