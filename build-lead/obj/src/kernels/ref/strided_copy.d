build-lead/obj/src/kernels/ref/strided_copy.o: \
 src/kernels/ref/strided_copy.c src/kernels/ref/strided_copy.h \
 include/qforge.h
src/kernels/ref/strided_copy.h:
include/qforge.h:
