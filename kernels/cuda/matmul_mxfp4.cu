// MXFP4 (gpt-oss's experts): the products of matmul_types.cuh for this type, compiled
// apart from the other types' so nvcc builds the groups in parallel.
#include "matmul_types.cuh"

PSI_MATMUL_TYPES(T_MXFP4)
