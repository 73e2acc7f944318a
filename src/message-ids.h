/* The MESSAGE_ID of every event echod logs to the journal, one per kind, each
 * made once with `systemd-id128 new`. man/echod.8 and the journal catalog
 * (catalog/echod.catalog) list the same IDs: change all three together. */
#pragma once

#define MESSAGE_ID_LISTENING          "95d121a181f543a795c4bfe3e36d6340"
#define MESSAGE_ID_CONNECTION_OPENED  "213385c75a76402abd41a652826cb8ca"
#define MESSAGE_ID_CONNECTION_CLOSED  "d867db7ba5064dbd997c244f76604a35"
#define MESSAGE_ID_CHILD_KILLED       "9ce42b2658d64d6daffccd679f5d3f67"
#define MESSAGE_ID_ACCEPT_FAILED      "be1e22d769584be89a5bded4914c42fe"
#define MESSAGE_ID_FORK_FAILED        "0a11b034841646308b8e3697d3d6c7f2"
#define MESSAGE_ID_LIMIT_REACHED      "eae113e6e4ba436fb53f1e734794dc7a"
#define MESSAGE_ID_STOPPING           "3c542865ed1d4499bc7a6cb8bdbab9e5"
#define MESSAGE_ID_STOPPED            "17a1a409052c483491a7368c319c807b"
#define MESSAGE_ID_SOURCE_LIMIT       "93ac6634bcb14ef9b1306197c660260b"
#define MESSAGE_ID_DATAGRAM_DROPPED   "4f52a7c421444f5997e6f3f1055cf9a7"
#define MESSAGE_ID_FD_STORE_FULL      "a39c9719cbbe4fee9e82313c627b87b8"
#define MESSAGE_ID_ACCEPTOR_DIED      "29c0b642f8fc469cac239fc8ae92a70d"
#define MESSAGE_ID_ACCEPTOR_HUNG      "2dbed48017c6497fa113a5fbbf2122ca"
