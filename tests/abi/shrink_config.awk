# Prints include/spectator.h with the last member of spectator_config_t (and
# the comment lines that continue it) removed: the header a program was built
# against before the library's struct grew by one field.
#
#   awk -f shrink_config.awk spectator.h spectator.h > shrunk/spectator.h
#
# Member lines start with exactly two spaces and an identifier; comment
# continuation lines are indented further. Exits 1 when no member is found.
NR == FNR {
  if ($0 ~ /^typedef struct spectator_config \{/) inside = 1
  else if (inside && $0 ~ /^} spectator_config_t;/) inside = 0
  else if (inside && $0 ~ /^  [A-Za-z_]/) last = FNR
  next
}
FNR == 1 {
  if (!last) exit 1
  print "/* Generated: spectator_config_t without its last member. */"
}
FNR == last { skipping = 1; next }
skipping && /^    / { next }
{ skipping = 0; print }
