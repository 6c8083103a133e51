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
# The anomaly rules file and its fuzz target.
if(TARGET sm_rulesfile)
  seismo_test(query rules_file LIBS sm_rulesfile)
  seismo_fuzz(rules LIBS sm_rulesfile)
endif()
# The conformance runner's own script-parser checks (no test scripts needed).
if(TARGET test_promql)
  add_test(NAME test_promql_selftest COMMAND test_promql --self-test)
  set_tests_properties(test_promql_selftest PROPERTIES LABELS "query" TIMEOUT 60)
endif()
# The differential test against a real Prometheus starts `seismo serve`.
seismo_query_test(promdiff seismo_query TIMEOUT 600 LABELS slow)
if(TARGET test_promdiff AND TARGET seismo)
  add_dependencies(test_promdiff seismo)
endif()
# Continuous anomaly rules, and their state files.
if(TARGET sm_rules)
  seismo_test(query rules LIBS sm_rules)
  seismo_fuzz(rule_state LIBS sm_rules)
endif()
# Anomaly reports over a fixed data set with known incidents, their
# schedules (DST), archive, sinks and webhooks.
if(TARGET sm_report)
  seismo_test(query report LIBS sm_report)
  seismo_test(query report_cron LIBS sm_report)
  seismo_test(query report_sched LIBS sm_report)
endif()
# PromQL's anomaly functions over ml/ (baselines fitted on query).
if(TARGET sm_engine AND TARGET seismo_ml)
  seismo_test(query anomaly_funcs LIBS sm_engine)
endif()
