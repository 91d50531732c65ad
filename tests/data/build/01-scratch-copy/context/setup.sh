ln -s a.txt link
chmod 0640 a.txt
chmod 0600 run.sh
