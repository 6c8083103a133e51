# tests/ingest: the remote_write decoder, and integration tests against a
# real `seismo serve` process (and a real Prometheus when installed).
seismo_test(ingest rw LIBS sm_rw)
seismo_test(ingest rw2 LIBS sm_rw)
seismo_test(ingest otlp LIBS sm_otlp)
seismo_test(ingest otlp_server LIBS sm_otlp TIMEOUT 300)
seismo_test(ingest import LIBS seismo_ingest)
seismo_test(ingest server LIBS sm_rw TIMEOUT 600)
seismo_test(ingest prometheus LIBS sm_rw TIMEOUT 300 LABELS slow)
seismo_test(ingest ui LIBS sm_rw TIMEOUT 300)
seismo_fuzz(remote_write LIBS sm_rw)
seismo_fuzz(remote_write2 LIBS sm_rw)
seismo_fuzz(otlp LIBS sm_otlp)
# The integration tests start the binary: build it first.
foreach(t server otlp_server prometheus ui)
  if(TARGET test_${t})
    add_dependencies(test_${t} seismo)
  endif()
endforeach()
