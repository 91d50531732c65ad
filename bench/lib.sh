# Helpers the benchmarks share (sourced; bash). timed writes its figures to
# $TIME_FILE, which the caller sets to a file in its work folder.

# drop: the page cache, dentries and inodes go, after a sync.
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# timed NAME CMD...: caches dropped, then wall seconds into T_NAME and peak
# RSS (KiB) into M_NAME.
timed() {
	local name=$1 t m
	shift
	drop
	/usr/bin/time -f "%e %M" -o "${TIME_FILE:?set TIME_FILE}" "$@"
	read -r t m <"$TIME_FILE"
	printf -v "T_$name" '%s' "$t"
	printf -v "M_$name" '%s' "$m"
	printf '  %-28s %7.2f s  %7d KiB peak\n' "$name" "$t" "$m"
}

# median NAME: the median of T_NAME_1..T_NAME_$RUNS into T_NAME, and the
# largest M_NAME_i into M_NAME.
median() {
	local name=$1 i t=() m=0
	for ((i = 1; i <= RUNS; i++)); do
		local tv="T_${name}_$i" mv="M_${name}_$i"
		t+=("${!tv}")
		[ "${!mv}" -gt "$m" ] && m=${!mv}
	done
	printf -v "T_$name" '%s' "$(printf '%s\n' "${t[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
	printf -v "M_$name" '%s' "$m"
}

# ratio A B: A / B with two decimals.
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

# rmtree DIR: rm -rf, deleting btrfs subvolumes (read-only ones too) whole first.
rmtree() {
	if [ "$(stat -f -c %T "$1" 2>/dev/null)" = btrfs ]; then
		find "$1" -type d -inum 256 -prune -exec btrfs -q subvolume delete {} + >/dev/null
	fi
	rm -rf "$1"
}
