import AceRelayApp
AceRelayCommand.main()
