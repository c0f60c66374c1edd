builtin.module attributes {annc.source = "examples/heat.ann", annc.inputs = ["T", "alpha"], annc.outputs = ["T", "E"], annc.targets = ["cpu"]} {
  func.func @main(%T: tensor<256x256xf32>, %alpha: tensor<f32>) -> (tensor<256x256xf32>, tensor<f32>) {
    %L = kernel.constant dense<[[0.000000e+00, 1.000000e+00, 0.000000e+00], [1.000000e+00, -4.000000e+00, 1.000000e+00], [0.000000e+00, 1.000000e+00, 0.000000e+00]]> : tensor<3x3xf32>
    %0 = kernel.region(%T, %alpha, %L) : (tensor<256x256xf32>, tensor<f32>, tensor<3x3xf32>) -> tensor<256x256xf32> {
    ^bb0(%1: tensor<256x256xf32>, %2: tensor<f32>, %3: tensor<3x3xf32>):
      %4 = arith.constant 0 : index
      %5 = arith.constant 100 : index
      %6 = arith.constant 1 : index
      %T_1 = scf.for %i = %4 to %5 step %6 iter_args(%T_2 = %1) -> (tensor<256x256xf32>) {
        %7 = kernel.constant dense<2.000000e-01> : tensor<f32>
        %8 = kernel.region(%7, %2, %T_2, %3) : (tensor<f32>, tensor<f32>, tensor<256x256xf32>, tensor<3x3xf32>) -> tensor<256x256xf32> {
        ^bb0(%9: tensor<f32>, %10: tensor<f32>, %11: tensor<256x256xf32>, %12: tensor<3x3xf32>):
          %13 = kernel.mul %9, %10 : tensor<f32>, tensor<f32> -> tensor<f32>
          %14 = kernel.conv2d %11, %12 : tensor<256x256xf32>, tensor<3x3xf32> -> tensor<256x256xf32>
          %15 = kernel.mul %13, %14 : tensor<f32>, tensor<256x256xf32> -> tensor<256x256xf32>
          %T_3 = kernel.add %11, %15 : tensor<256x256xf32>, tensor<256x256xf32> -> tensor<256x256xf32>
          kernel.yield %T_3 : tensor<256x256xf32>
        }
        scf.yield %8 : tensor<256x256xf32>
      }
      kernel.yield %T_1 : tensor<256x256xf32>
    }
    %1 = kernel.region(%0) : (tensor<256x256xf32>) -> tensor<f32> {
    ^bb0(%2: tensor<256x256xf32>):
      %3 = kernel.mul %2, %2 : tensor<256x256xf32>, tensor<256x256xf32> -> tensor<256x256xf32>
      %E = kernel.sum %3 : tensor<256x256xf32> -> tensor<f32>
      kernel.yield %E : tensor<f32>
    }
    func.return %0, %1 : tensor<256x256xf32>, tensor<f32>
  }
}
