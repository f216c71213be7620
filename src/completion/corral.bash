# bash completion for corral(1)                             -*- shell-script -*-
_corral()
{
    local cur prev words cword
    _init_completion -n : || return

    local cmds="run exec check worker report"
    local limits="-m --memory --swap --pids --cpus -t --timeout --kill-after --oom-group
        --no-oom-group --allow-subprocess-oom --cgroup-parent --no-cgroups"
    local retry="--retries --retry-on --memory-growth --memory-ceiling --report --joblog"
    local sandbox="--seccomp --allow-ptrace --allow-io-uring --core-dumps --user --no-network
        --no-sandbox"
    local other="-q --quiet -v --verbose --cgroups --tmpdir --help --version"
    local runonly="-j --jobs --halt --memory-budget -a --arg-file -0 --null -k --keep-order
        --ungroup --results --progress --link -C --colsep -N -L --max-lines --trim --dry-run
        --tag --tagstring --line-buffer --resume --resume-failed --timeline
        --slurm --workers --nodes --lost-retries --worker-timeout"

    local sub="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        run | exec | check | worker | report) sub=${words[i]}; break ;;
        --) break ;;
        esac
    done
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
        return
    fi
    # after "--" (or the command, for run/exec): complete commands and files
    for ((i = i + 1; i < cword; i++)); do
        if [[ ${words[i]} == -- ]]; then
            _command_offset $((i + 1))
            return
        fi
    done
    case $prev in
    --halt) COMPREPLY=($(compgen -W "ordered now never" -- "$cur")); return ;;
    --retry-on) COMPREPLY=($(compgen -W "oom timeout signal exit all none oom,timeout" -- "$cur")); return ;;
    --seccomp) COMPREPLY=($(compgen -W "default off" -- "$cur")); _filedir; return ;;
    -a | --arg-file | --report | --joblog | --results | --tmpdir | --html)
        _filedir; return ;;
    --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    -m | --memory | --swap | --memory-ceiling | --memory-budget)
        COMPREPLY=($(compgen -W "64M 256M 512M 1G 2G 4G 8G max" -- "$cur")); return ;;
    --cgroups) COMPREPLY=($(compgen -W "auto own systemd slurm observe off" -- "$cur")); return ;;
    --trim) COMPREPLY=($(compgen -W "n l r lr" -- "$cur")); return ;;
    -t | --timeout | --kill-after | --worker-timeout)
        COMPREPLY=($(compgen -W "30s 5m 1h" -- "$cur")); return ;;
    -j | --jobs | --pids | --cpus | --retries | --memory-growth | --cgroup-parent | \
        --lost-retries | --workers | --nodes | -C | --colsep | -N | -L | --max-lines | --tagstring)
        return ;;
    esac
    if [[ $cur == -* ]]; then
        case $sub in
        run) COMPREPLY=($(compgen -W "$limits $runonly $retry $sandbox $other" -- "$cur")) ;;
        exec) COMPREPLY=($(compgen -W "$limits $retry $sandbox $other --" -- "$cur")) ;;
        check) COMPREPLY=($(compgen -W "--json --cgroup-parent --help" -- "$cur")) ;;
        worker) COMPREPLY=($(compgen -W "--cgroup-parent --cgroups --no-cgroups --tmpdir --help" -- "$cur")) ;;
        report) COMPREPLY=($(compgen -W "--html --suggest --help" -- "$cur")) ;;
        esac
        return
    fi
    case $sub in
    run) COMPREPLY=($(compgen -c -- "$cur")) ;;
    report) _filedir jsonl ;;
    esac
} && complete -F _corral corral
