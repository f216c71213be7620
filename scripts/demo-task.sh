#!/bin/sh
# demo-task.sh N - one task of the demo batch: task 2 needs about 200 MiB,
# the others 10 MiB. Each touches its memory (python3 replaces the shell, so
# the task's main process is the one that allocates), then says so.
n=$1
mib=10
[ "$n" = 2 ] && mib=200
echo "task $n: allocating $mib MiB"
exec python3 -c "b = bytearray($mib * 1024 * 1024); print('task $n: done, touched', len(b) >> 20, 'MiB')"
