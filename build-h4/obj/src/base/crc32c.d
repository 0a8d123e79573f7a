build-h4/obj/src/base/crc32c.o: src/base/crc32c.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
