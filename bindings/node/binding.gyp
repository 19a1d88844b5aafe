# Built by scripts/build.js, which first builds libticketyboo with CMake and
# writes build-native/config.json (include dir, library dir, node-addon-api).
{
  "variables": {
    "tb_werror": "<!(node -p \"require('./build-native/config.json').werror ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "ticketyboo",
      "sources": ["src/ticketyboo_wrap.cxx"],
      "include_dirs": [
        "<!(node -p \"require('./build-native/config.json').addonApi\")",
        "<!(node -p \"require('./build-native/config.json').include\")"
      ],
      "libraries": [
        "-L<!(node -p \"require('./build-native/config.json').libdir\")",
        "-lticketyboo"
      ],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"],
      "cflags_cc": ["-Wall"],
      "conditions": [
        ["tb_werror == 1", {"cflags_cc": ["-Werror"]}]
      ]
    }
  ]
}
