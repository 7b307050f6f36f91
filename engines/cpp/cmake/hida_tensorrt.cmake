# Finds TensorRT (headers + libnvinfer), the CUDA runtime and nlohmann_json,
# and defines hida_tensorrt / hida::tensorrt. If anything is missing, prints
# ONE message naming it and defines nothing: the rest of the project builds.
#
# TensorRT is looked for in -DTENSORRT_ROOT (or $TENSORRT_ROOT), then the
# usual places: /usr (Debian/Ubuntu packages put it under
# include|lib/x86_64-linux-gnu), /usr/local/TensorRT, /opt/tensorrt.
set(_hida_trt_hints ${TENSORRT_ROOT} /usr/local/TensorRT /opt/tensorrt /usr/local/tensorrt)
find_path(TENSORRT_INCLUDE_DIR NvInferRuntime.h
          HINTS ${_hida_trt_hints} PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)
find_library(TENSORRT_NVINFER_LIBRARY NAMES nvinfer nvinfer_10 nvinfer_11
             HINTS ${_hida_trt_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu)
find_package(CUDAToolkit QUIET)
find_package(nlohmann_json 3 QUIET)

set(_hida_trt_missing "")
if(NOT TENSORRT_INCLUDE_DIR OR NOT TENSORRT_NVINFER_LIBRARY)
  set(_hida_trt_missing "TensorRT (NvInferRuntime.h + libnvinfer; pass -DTENSORRT_ROOT=/path/to/TensorRT)")
elseif(NOT TARGET CUDA::cudart)
  set(_hida_trt_missing "the CUDA runtime (CUDAToolkit: set CUDAToolkit_ROOT or put nvcc on PATH)")
elseif(NOT nlohmann_json_FOUND)
  set(_hida_trt_missing "nlohmann_json >= 3 (Debian: apt-get install nlohmann-json3-dev), used to read the engine manifest")
endif()

if(_hida_trt_missing)
  # WARNING when the user asked for TensorRT explicitly, STATUS otherwise (a CPU machine).
  if(TENSORRT_ROOT)
    message(WARNING "hida::tensorrt skipped: ${_hida_trt_missing} not found")
  else()
    message(STATUS "hida::tensorrt skipped: ${_hida_trt_missing} not found")
  endif()
else()
  add_library(hida_tensorrt STATIC ${CMAKE_CURRENT_LIST_DIR}/../src/tensorrt_backend.cpp
                                   ${CMAKE_CURRENT_LIST_DIR}/../src/tensorrt_manifest.cpp)
  add_library(hida::tensorrt ALIAS hida_tensorrt)
  target_include_directories(hida_tensorrt PRIVATE ${TENSORRT_INCLUDE_DIR})
  # No plugin library: the engine's AOT plugins carry their compiled kernels.
  target_link_libraries(hida_tensorrt PUBLIC hida_core PRIVATE ${TENSORRT_NVINFER_LIBRARY} CUDA::cudart
                        nlohmann_json::nlohmann_json)
  target_compile_definitions(hida_tensorrt INTERFACE HIDA_HAVE_TENSORRT=1)
  set_target_properties(hida_tensorrt PROPERTIES POSITION_INDEPENDENT_CODE ON)
  message(STATUS "hida::tensorrt: ${TENSORRT_NVINFER_LIBRARY}")
endif()
