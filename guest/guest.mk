# The hello unikernel (owned by guest/). Placeholder until the guest lands.
.PHONY: guest
guest:
