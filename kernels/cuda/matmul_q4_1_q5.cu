// Q4_1, Q5_0 and Q5_1: the products of matmul_types.cuh for these types, compiled
// apart from the other types' so nvcc builds the groups in parallel.
#include "matmul_types.cuh"

PSI_MATMUL_TYPES(T_Q4_1)
PSI_MATMUL_TYPES(T_Q5_0)
PSI_MATMUL_TYPES(T_Q5_1)
