# tests/ml: the anomaly-detection library (baselines, forests, the streaming
# scorer, model state codecs) and the `seismo score` command's CSV path.
seismo_test(ml baseline LIBS seismo_ml)
seismo_test(ml iforest LIBS seismo_ml)
seismo_test(ml online LIBS seismo_ml)
seismo_test(ml shape LIBS seismo_ml)
# `seismo score` lives in ingest/; its test compiles ingest/score.c itself
# so that it needs nothing else of the ingest library.
seismo_test(ml score LIBS seismo_ml)
if(TARGET test_score)
  target_sources(test_score PRIVATE ${PROJECT_SOURCE_DIR}/ingest/score.c)
endif()
seismo_fuzz(ml_model LIBS seismo_ml)
