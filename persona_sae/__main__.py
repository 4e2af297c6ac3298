from persona_sae.cli import main

raise SystemExit(main())
