build-h4/obj/src/kernels/ref/broadcast.o: src/kernels/ref/broadcast.c \
 src/kernels/ref/broadcast.h src/base/base.h include/qforge.h
src/kernels/ref/broadcast.h:
src/base/base.h:
include/qforge.h:
