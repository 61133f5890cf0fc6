from hafm.cli import main

raise SystemExit(main())
