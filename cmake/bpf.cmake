# BPF C compilation and libbpf skeletons, in one function.
#
#   rs_bpf_object(NAME SOURCE [SKELETON] [OUTPUT_DIR dir] [DEFINES A=1 ...] [DEPENDS files...])
#
# compiles SOURCE with clang -target bpf -O2 -g into OUTPUT_DIR/NAME.bpf.o (default: the
# current binary dir) and, with SKELETON, generates ${CMAKE_BINARY_DIR}/include/NAME.skel.h with
# bpftool gen skeleton.  A target named bpf_NAME is created; depend on it.
find_program(CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
		OUTPUT_VARIABLE RS_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT RS_MULTIARCH)
	set(RS_MULTIARCH x86_64-linux-gnu)
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
	set(RS_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
	set(RS_BPF_ARCH arm64)
else()
	set(RS_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# vmlinux.h for CO-RE programs of the agent (capture, iterators), from the running kernel.
set(RS_VMLINUX_H ${CMAKE_BINARY_DIR}/include/vmlinux.h)
add_custom_command(OUTPUT ${RS_VMLINUX_H}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/include
	COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${RS_VMLINUX_H}
	COMMENT "Generating vmlinux.h from /sys/kernel/btf/vmlinux")
add_custom_target(rs_vmlinux_h DEPENDS ${RS_VMLINUX_H})

function(rs_bpf_object NAME SOURCE)
	cmake_parse_arguments(ARG "SKELETON" "OUTPUT_DIR" "DEFINES;DEPENDS" ${ARGN})
	if(NOT ARG_OUTPUT_DIR)
		set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
	endif()
	get_filename_component(src ${SOURCE} ABSOLUTE)
	set(obj ${ARG_OUTPUT_DIR}/${NAME}.bpf.o)
	set(defs)
	foreach(d ${ARG_DEFINES})
		list(APPEND defs -D${d})
	endforeach()
	add_custom_command(OUTPUT ${obj}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${ARG_OUTPUT_DIR}
		COMMAND ${CLANG} -target bpf -O2 -g -Wall -Werror
			-D__TARGET_ARCH_${RS_BPF_ARCH} ${defs}
			-I${CMAKE_BINARY_DIR}/include -I${CMAKE_SOURCE_DIR}
			-I${CMAKE_CURRENT_SOURCE_DIR}
			-I/usr/include/${RS_MULTIARCH}
			-c ${src} -o ${obj}
		DEPENDS ${src} ${RS_VMLINUX_H} ${ARG_DEPENDS}
		IMPLICIT_DEPENDS C ${src}
		COMMENT "BPF ${NAME}.bpf.o"
		VERBATIM)
	set(outs ${obj})
	if(ARG_SKELETON)
		set(skel ${CMAKE_BINARY_DIR}/include/${NAME}.skel.h)
		add_custom_command(OUTPUT ${skel}
			COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}
			DEPENDS ${obj}
			COMMENT "Skeleton ${NAME}.skel.h"
			VERBATIM)
		list(APPEND outs ${skel})
	endif()
	add_custom_target(bpf_${NAME} ALL DEPENDS ${outs})
	# vmlinux.h is produced in another directory: order by target, not by file.
	add_dependencies(bpf_${NAME} rs_vmlinux_h)
endfunction()
