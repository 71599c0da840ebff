# /etc/bash.bashrc of the snapshot-backup appliance: interactive bash shells
# that are not login shells get the same prompt as login shells.
[ -z "$PS1" ] && return
PS1='[sb-rescue appliance] \w # '
alias ls='ls --color=auto'
alias ll='ls -la'
