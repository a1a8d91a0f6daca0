// counter: the chaincode interop/chaincode.sh instantiates on a Fabric v1.4.12 peer in development mode.
// Written for this project against the v1.4.12 shim (github.com/hyperledger/fabric/core/chaincode/shim).
//
//	init                      no state
//	put KEY VALUE             state[KEY] = VALUE
//	get KEY                   returns state[KEY] ("" if unset)
//	inc KEY                   state[KEY] = decimal(state[KEY]) + 1, returns the new value
package main

import (
	"fmt"
	"strconv"

	"github.com/hyperledger/fabric/core/chaincode/shim"
	pb "github.com/hyperledger/fabric/protos/peer"
)

type counter struct{}

func (counter) Init(shim.ChaincodeStubInterface) pb.Response { return shim.Success(nil) }

func (counter) Invoke(stub shim.ChaincodeStubInterface) pb.Response {
	fn, args := stub.GetFunctionAndParameters()
	switch {
	case fn == "put" && len(args) == 2:
		if err := stub.PutState(args[0], []byte(args[1])); err != nil {
			return shim.Error(err.Error())
		}
		return shim.Success(nil)
	case fn == "get" && len(args) == 1:
		v, err := stub.GetState(args[0])
		if err != nil {
			return shim.Error(err.Error())
		}
		return shim.Success(v)
	case fn == "inc" && len(args) == 1:
		return increment(stub, args[0])
	}
	return shim.Error(fmt.Sprintf("unknown call %q with %d arguments (put KEY VALUE | get KEY | inc KEY)", fn, len(args)))
}

func increment(stub shim.ChaincodeStubInterface, key string) pb.Response {
	v, err := stub.GetState(key)
	if err != nil {
		return shim.Error(err.Error())
	}
	n := 0
	if len(v) > 0 {
		if n, err = strconv.Atoi(string(v)); err != nil {
			return shim.Error(fmt.Sprintf("%s holds %q, not a number", key, v))
		}
	}
	next := []byte(strconv.Itoa(n + 1))
	if err := stub.PutState(key, next); err != nil {
		return shim.Error(err.Error())
	}
	return shim.Success(next)
}

func main() {
	if err := shim.Start(counter{}); err != nil {
		fmt.Println("counter chaincode:", err)
	}
}
