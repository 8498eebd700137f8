from pfmsmt_tf.cli import main

main()
