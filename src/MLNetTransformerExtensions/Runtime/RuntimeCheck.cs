using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>The result of <see cref="RuntimeCheck.Run"/>: a tiny model's loss and gradient norm.</summary>
/// <param name="Loss">Mean-squared error of a small linear layer on fixed random data.</param>
/// <param name="GradientNorm">L2 norm of the weight gradient after one backward pass.</param>
/// <param name="Threads">libtorch's intra-op thread count.</param>
public sealed record RuntimeCheckResult(float Loss, float GradientNorm, int Threads);

/// <summary>Proves the native runtime works: one forward and one backward pass of a small model.</summary>
public static class RuntimeCheck
{
    /// <summary>Runs a seeded forward and backward pass through a linear layer and returns its numbers.</summary>
    /// <returns>The loss, the weight gradient's norm and the thread count.</returns>
    public static RuntimeCheckResult Run()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var generator = new Generator(seed: 7);
        var weight = randn([4, 16], generator: generator).requires_grad_();
        var bias = zeros(4).requires_grad_();
        var input = randn([8, 16], generator: generator);
        var target = randn([8, 4], generator: generator);
        var loss = nn.functional.mse_loss(nn.functional.linear(input, weight, bias), target);
        loss.backward();
        return new RuntimeCheckResult(loss.item<float>(), weight.grad!.norm().item<float>(), get_num_threads());
    }
}
