// OpenMPI's C API. Its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are macros over global objects that Swift
// cannot import, so they are exposed as inline functions.
#include <mpi.h>

static inline MPI_Comm halo_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype halo_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype halo_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype halo_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype halo_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op halo_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Request halo_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *halo_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *halo_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline int halo_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int halo_mpi_any_tag(void) { return MPI_ANY_TAG; }
// Matched probes (MPI_Improbe / MPI_Imrecv) of channel messages.
static inline MPI_Message halo_mpi_message_null(void) { return MPI_MESSAGE_NULL; }
// Buffer argument for datatypes built from absolute addresses (MPI_Get_address).
static inline void *halo_mpi_bottom(void) { return MPI_BOTTOM; }
static inline void *halo_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler halo_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int halo_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int halo_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int halo_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
// The largest tag point-to-point messages may carry on `comm` (the standard guarantees at least 32767).
static inline int halo_mpi_tag_ub(MPI_Comm comm) {
    void *value = 0;
    int flag = 0;
    if (MPI_Comm_get_attr(comm, MPI_TAG_UB, &value, &flag) != MPI_SUCCESS || !flag || value == 0) return 32767;
    return *(int *)value;
}
