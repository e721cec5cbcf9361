from mgvsr.cli import main

raise SystemExit(main())
