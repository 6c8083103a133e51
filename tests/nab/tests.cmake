# tests/nab: the NAB scorer and JSON reader of the NAB harness
# (bench/nab_score.c, bench/nab_json.c; the harness itself is bench/nab.c),
# checked against SCORING.md's check values, hand-made files and a naive
# implementation on seeded random corpora.
seismo_test(nab nab_score LIBS seismo_base)
if(TARGET test_nab_score)
  target_sources(test_nab_score PRIVATE
    ${PROJECT_SOURCE_DIR}/bench/nab_score.c ${PROJECT_SOURCE_DIR}/bench/nab_json.c)
  target_include_directories(test_nab_score PRIVATE ${PROJECT_SOURCE_DIR}/bench)
endif()
