mkdir -p arch/inner && echo inner > arch/inner/file && echo top > arch/top
tar -czf files.tar.gz -C arch . && tar -cf - -C arch . | zstd -q -o files.tar.zst
tar -cjf files.tar.bz2 -C arch ./inner && tar -cJf files.tar.xz -C arch ./top
rm -rf arch
