# OTLP/HTTP metrics (otlp.c): the schema (proto/otlp_metrics.proto, compiled
# with protoc-c like the remote_write ones), the decoder, and zlib for the
# gzip bodies OpenTelemetry exporters send by default.  Included at the end
# of ingest/CMakeLists.txt, after rw_protoc and seismo_ingest exist.
find_package(ZLIB REQUIRED)
rw_protoc(otlp_metrics)
add_library(sm_otlpproto STATIC ${RW_GEN_DIR}/otlp_metrics.pb-c.c)
target_include_directories(sm_otlpproto PUBLIC ${RW_GEN_DIR})
target_compile_options(sm_otlpproto PRIVATE -w)
target_link_libraries(sm_otlpproto PUBLIC PkgConfig::PROTOBUFC)

add_library(sm_otlp STATIC otlp.c)
target_include_directories(sm_otlp PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(sm_otlp PUBLIC sm_rw sm_otlpproto sm_json seismo_tsdb ZLIB::ZLIB)
target_link_libraries(seismo_ingest PUBLIC sm_otlp)
