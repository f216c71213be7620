# report.cmake - what `corral report --html` embeds (included by the top-level
# CMakeLists.txt after the corral target).
#
# The chart library (Apache ECharts, pinned in package-lock.json) is fetched
# at build time by `npm ci` into <build>/report-npm (never into the source
# tree) and embedded in the binary with the page's own files (page.html,
# page.css, page.js) through the assembler's .incbin (report_assets.c.in).
# Without npm the build still succeeds: the bundle is empty, and --html exits
# 125 saying why.
set(CORRAL_REPORT_SRC ${PROJECT_SOURCE_DIR}/src/cli/report)
set(CORRAL_REPORT_OUT ${CMAKE_BINARY_DIR}/report-assets)
set(CORRAL_ASSET_ECHARTS ${CORRAL_REPORT_OUT}/echarts.js)
set(CORRAL_ASSET_WHY ${CORRAL_REPORT_OUT}/echarts.why)
set(CORRAL_ASSET_HTML ${CORRAL_REPORT_SRC}/page.html)
set(CORRAL_ASSET_CSS ${CORRAL_REPORT_SRC}/page.css)
set(CORRAL_ASSET_JS ${CORRAL_REPORT_SRC}/page.js)
file(MAKE_DIRECTORY ${CORRAL_REPORT_OUT})

find_program(CORRAL_NPM npm)
# One output only, used by one target only (the corral object below): with
# Makefiles, a custom command that two targets or two outputs share may run
# twice at once, and two `npm ci` in one directory clash. The reason file is
# written beside it by the same command.
if(CORRAL_NPM)
  add_custom_command(OUTPUT ${CORRAL_ASSET_ECHARTS}
    COMMAND ${CMAKE_COMMAND} -DNPM=${CORRAL_NPM} -DSRC=${CORRAL_REPORT_SRC}
            -DWORK=${CMAKE_BINARY_DIR}/report-npm -DOUT=${CORRAL_ASSET_ECHARTS}
            -DWHY=${CORRAL_ASSET_WHY} -P ${CORRAL_REPORT_SRC}/npm-fetch.cmake
    DEPENDS ${CORRAL_REPORT_SRC}/package.json ${CORRAL_REPORT_SRC}/package-lock.json
            ${CORRAL_REPORT_SRC}/npm-fetch.cmake
    COMMENT "npm ci: the chart library of corral report --html"
    VERBATIM)
else()
  message(WARNING "npm not found: `corral report --html` will be unavailable "
                  "(scripts/install-deps.sh installs npm)")
  file(WRITE ${CORRAL_ASSET_ECHARTS} "")
  file(WRITE ${CORRAL_ASSET_WHY}
    "this corral was built without its chart library: npm was not found at build time; install npm (scripts/install-deps.sh) and rebuild")
endif()

configure_file(${CORRAL_REPORT_SRC}/report_assets.c.in ${CORRAL_REPORT_OUT}/report_assets.c @ONLY)
set_source_files_properties(${CORRAL_REPORT_OUT}/report_assets.c PROPERTIES OBJECT_DEPENDS
  "${CORRAL_ASSET_ECHARTS};${CORRAL_ASSET_HTML};${CORRAL_ASSET_CSS};${CORRAL_ASSET_JS}")
target_sources(corral PRIVATE ${CORRAL_REPORT_OUT}/report_assets.c)

# The JSON Lines schema of --report files.
install(FILES ${PROJECT_SOURCE_DIR}/src/lib/report.schema.json
  DESTINATION ${CMAKE_INSTALL_DATADIR}/corral)
