/**
 * `ganeti-os completion bash|zsh|fish`: a completion script for the shell. The script is small:
 * on each Tab it asks `ganeti-os __complete` (src/commands/complete.ts) for the candidates of the
 * command line typed so far, so commands, options, templates and a definition's variants and
 * parameters always match the installed ganeti-os and the definition at hand.
 */
import type { Context } from '../context';
import { COMPLETION_SHELLS } from '../cli';
import { UsageError } from '../errors';

export interface CompletionOptions {
  shell: string;
}

const BASH = `# bash completion for ganeti-os, from 'ganeti-os completion bash'.
# Now:      source <(ganeti-os completion bash)
# For good: ganeti-os completion bash > ~/.local/share/bash-completion/completions/ganeti-os
_ganeti_os() {
    local IFS=$'\\n' cur="\${COMP_WORDS[COMP_CWORD]}" directive
    local -a reply
    reply=($(command "\${COMP_WORDS[0]}" __complete --shell bash -- "\${COMP_LINE:0:COMP_POINT}" 2>/dev/null)) || return 0
    directive=\${reply[0]}
    reply=("\${reply[@]:1}")
    case $cur in [=:]) cur= ;; esac
    case $directive in
        :files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
        :dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
        :nospace) compopt -o nospace 2>/dev/null; COMPREPLY=("\${reply[@]}") ;;
        *) COMPREPLY=("\${reply[@]}") ;;
    esac
}
complete -F _ganeti_os ganeti-os
`;

const ZSH = `#compdef ganeti-os
# zsh completion for ganeti-os, from 'ganeti-os completion zsh'.
# Now:      source <(ganeti-os completion zsh)
# For good: ganeti-os completion zsh > "\${fpath[1]}/_ganeti-os"
_ganeti_os() {
    local directive line="\${(j: :)\${(@q-)words[1,CURRENT-1]}} \${(q-)PREFIX}"
    local -a reply
    reply=("\${(@f)$(command \${words[1]} __complete --shell zsh -- "$line" 2>/dev/null)}") || return 1
    directive=\${reply[1]}
    shift reply
    case $directive in
        :files) _files ;;
        :dirs) _files -/ ;;
        :nospace) _describe -t values ganeti-os reply -S '' ;;
        *) _describe -t values ganeti-os reply ;;
    esac
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
    _ganeti_os "$@"
else
    compdef _ganeti_os ganeti-os
fi
`;

const FISH = `# fish completion for ganeti-os, from 'ganeti-os completion fish'.
# Now:      ganeti-os completion fish | source
# For good: ganeti-os completion fish > ~/.config/fish/completions/ganeti-os.fish
function __ganeti_os_complete
    set -l cmd (commandline -opc)[1]
    set -l reply (command $cmd __complete --shell fish -- (commandline -cp) 2>/dev/null)
    or return
    switch "$reply[1]"
        case :files
            __fish_complete_path (commandline -ct)
        case :dirs
            __fish_complete_directories (commandline -ct)
        case '*'
            printf '%s\\n' $reply[2..-1]
    end
end
complete -c ganeti-os -f -a '(__ganeti_os_complete)'
`;

const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH, fish: FISH };

/** Prints the script for `opts.shell`; throws UsageError for a shell it has none for. */
export async function runCompletion(ctx: Context, opts: CompletionOptions): Promise<void> {
  const script = COMPLETION_SHELLS.includes(opts.shell) ? SCRIPTS[opts.shell] : undefined;
  if (!script) throw new UsageError(`no completion for shell '${opts.shell}': give one of ${COMPLETION_SHELLS.join(', ')}`);
  ctx.out.write(script);
}
