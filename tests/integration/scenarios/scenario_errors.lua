-- Mistakes made at run time: a hook that raises, and misspelt action names looked up by a
-- computed key (`smtp.rejct(...)` written out is refused when the scenario loads).
function on_rcpt(s, rcpt)
  if rcpt.local_part == "boom" then
    error("boom")
  end
  if rcpt.local_part == "typo" then
    return smtp["rejct"](550, "5.1.1", "No such user")
  end
  if rcpt.local_part == "typo2" then
    return smtp["repyl"](550, "5.1.1", "No such user")
  end
end
