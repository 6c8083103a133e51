# tests/query: the JSON writer, the parser, function arithmetic, the
# evaluator, Prometheus's own PromQL test scripts (conformance), and the
# HTTP API.  A test is registered only once the library it needs exists.
macro(seismo_query_test stem lib)
  if(TARGET ${lib})
    seismo_test(query ${stem} LIBS ${lib} ${ARGN})
  endif()
endmacro()

seismo_query_test(json sm_json)
seismo_query_test(parse sm_promql)
seismo_query_test(functions sm_qfunc)
seismo_query_test(engine sm_engine)
seismo_query_test(promql sm_engine TIMEOUT 600)
seismo_query_test(api seismo_query)
if(TARGET sm_promql)
  seismo_fuzz(promql LIBS sm_promql)
endif()
