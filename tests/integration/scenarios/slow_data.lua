-- The reply to DATA (the 354) comes 5 s late; run with --time-scale to shrink it.
function on_data(s)
  return smtp.delay(5)
end
