/** Shell completion scripts, made from the command tree itself (nouns, verbs, their options). */
import type { Command } from 'commander';

function words(cmd: Command): string {
  return cmd.commands.map((c) => c.name()).join(' ');
}
function flags(cmd: Command): string {
  return cmd.options.map((o) => o.long ?? '').filter(Boolean).join(' ');
}

export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const globals = `${flags(program)} --help`;
  const cases = program.commands
    .map((noun) => {
      const sub = noun.commands.map((verb) => `        ${noun.name()}:${verb.name()}) opts="${flags(verb)} ${globals}" ;;`).join('\n');
      return `${sub ? sub + '\n' : ''}        ${noun.name()}:*) opts="${words(noun)} ${flags(noun)} ${globals}" ;;`;
    })
    .join('\n');
  const fn = `# qemu-manager ${shell} completion
_qemu_manager() {
    local cur noun verb opts i
    cur="\${COMP_WORDS[COMP_CWORD]}"
    noun=""; verb=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "\${COMP_WORDS[i]}" in
            -*) ;;
            *) if [ -z "$noun" ]; then noun="\${COMP_WORDS[i]}"; elif [ -z "$verb" ]; then verb="\${COMP_WORDS[i]}"; fi ;;
        esac
    done
    if [ -z "$noun" ]; then
        opts="${words(program)} ${globals}"
    else
        case "$noun:$verb" in
${cases}
        *) opts="${globals}" ;;
        esac
    fi
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -F _qemu_manager qemu-manager
`;
  return shell === 'bash' ? fn : `#compdef qemu-manager\nautoload -U +X bashcompinit && bashcompinit\n${fn}`;
}
