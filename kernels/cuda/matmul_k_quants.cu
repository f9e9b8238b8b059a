// The K-quants (Q4_K, Q5_K, Q6_K): the products of matmul_types.cuh for these types, compiled
// apart from the other types' so nvcc builds the groups in parallel.
#include "matmul_types.cuh"

PSI_MATMUL_TYPES(T_Q4_K)
PSI_MATMUL_TYPES(T_Q5_K)
PSI_MATMUL_TYPES(T_Q6_K)
