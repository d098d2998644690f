-- slow_mail_hook: MAIL is answered after a 1.5 s pause in the hook (longer than the command
-- deadline test_timeouts.py sets), to show a scenario's pause never counts against the
-- client's next, already begun, command line.
function on_mail(s, mail)
  smtp.sleep(1.5)
end
