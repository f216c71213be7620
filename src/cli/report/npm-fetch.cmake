# npm-fetch.cmake - `cmake -P` script run at build time (report.cmake): fetch
# the chart library of `corral report --html` with `npm ci` from the lock file,
# and copy its minified bundle to OUT.
#
#   -DNPM=path -DSRC=src/cli/report -DWORK=<build>/report-npm -DOUT=<file> -DWHY=<file>
#
# Never fails the build: when npm ci fails (no network, registry down), OUT is
# written empty and WHY says what happened; `corral report --html` then exits
# 125 with that reason, and everything else works. The next build does not try
# again by itself (offline, each try would wait for npm's timeouts): removing
# OUT does.
file(MAKE_DIRECTORY ${WORK})
foreach(f package.json package-lock.json)
  configure_file(${SRC}/${f} ${WORK}/${f} COPYONLY)
endforeach()
set(bundle ${WORK}/node_modules/echarts/dist/echarts.common.min.js)
execute_process(
  COMMAND ${NPM} ci --ignore-scripts --no-audit --no-fund --loglevel=error
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
set(why "")
if(NOT rc EQUAL 0)
  string(REGEX REPLACE "\n.*" "" first "${err}")
  set(why "this corral was built without its chart library: `npm ci` failed at build time (${first}); with access to the npm registry, rm ${OUT} and rebuild")
elseif(NOT EXISTS ${bundle})
  set(why "this corral was built without its chart library: ${bundle} is missing after `npm ci`")
else()
  file(READ ${bundle} js)
  string(FIND "${js}" "</script" at)
  if(NOT at EQUAL -1)
    set(why "this corral was built without its chart library: the bundle contains '</script' and cannot be inlined")
  endif()
endif()
if(why STREQUAL "")
  configure_file(${bundle} ${OUT} COPYONLY)
else()
  message(WARNING "corral report --html: ${why}")
  file(WRITE ${OUT} "")
endif()
file(WRITE ${WHY} "${why}")
