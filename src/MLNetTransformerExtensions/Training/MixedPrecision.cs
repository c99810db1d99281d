using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// bfloat16 mixed-precision training done explicitly, because TorchSharp 0.107 does not expose libtorch's autocast.
/// The module itself runs in bfloat16 (its forward and backward passes, so every matrix multiplication and the
/// attention), while this class keeps float32 master weights, one <see cref="Parameter"/> per trainable weight, for
/// the optimizer: after each backward pass <see cref="CollectGradients"/> adds the bfloat16 gradients into the masters'
/// float32 ones, the optimizer (and gradient clipping, so its norm) works on the masters, and <see cref="Refresh"/>
/// rounds the updated masters back into the module. Updates smaller than bfloat16's spacing are therefore not lost,
/// which is why the masters exist. libtorch computes LayerNorm's mean and variance and softmax's sums in float32 for
/// bfloat16 inputs; the losses turn their logits into float32 themselves. <see cref="ToFloat32"/> puts the module back
/// in float32 with the masters' exact values (for validation, checkpoints, saving); frozen weights and buffers are kept
/// in float32 here too, so a round trip through bfloat16 changes nothing.
/// </summary>
internal sealed class MixedPrecision : IDisposable
{
    private readonly nn.Module _model;
    private readonly Dictionary<string, Tensor> _frozen = new(StringComparer.Ordinal);
    private bool _inBFloat16;

    /// <summary>Copies <paramref name="model"/>'s float32 weights as masters; the module stays float32 until <see cref="ToBFloat16"/>.</summary>
    /// <param name="model">A float32 module.</param>
    public MixedPrecision(nn.Module model)
    {
        _model = model;
        var (decay, noDecay) = FineTuner.ParameterGroups(model);
        using var _ = no_grad();
        Decay = [.. decay.Select(p => (p.Name, Master(p.Parameter)))];
        NoDecay = [.. noDecay.Select(p => (p.Name, Master(p.Parameter)))];
        var trained = Decay.Concat(NoDecay).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (tensor.is_floating_point() && !trained.Contains(name))
            {
                _frozen[name] = tensor.clone();
            }
        }
    }

    private static Parameter Master(Parameter weight)
    {
        using var copy = weight.clone();
        return new Parameter(copy, requires_grad: true);
    }

    /// <summary>The float32 masters of the weights AdamW decays, in <see cref="FineTuner.ParameterGroups"/>' order.</summary>
    public List<(string Name, Parameter Parameter)> Decay { get; }

    /// <summary>The float32 masters of the weights AdamW does not decay, in <see cref="FineTuner.ParameterGroups"/>' order.</summary>
    public List<(string Name, Parameter Parameter)> NoDecay { get; }

    /// <summary>Every master, decayed ones first.</summary>
    public IEnumerable<Parameter> Parameters => Decay.Concat(NoDecay).Select(p => p.Parameter);

    /// <summary>Takes the float32 module's current weights as the masters (after a checkpoint was restored into it).</summary>
    public void ReadFromModel()
    {
        if (_inBFloat16)
        {
            throw new InvalidOperationException("The masters can only be read from a float32 module.");
        }

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var state = _model.state_dict();
        foreach (var (name, master) in Decay.Concat(NoDecay))
        {
            master.copy_(state[name]);
        }

        foreach (var (name, copy) in _frozen)
        {
            copy.copy_(state[name]);
        }
    }

    /// <summary>Turns the module into bfloat16 for training steps (nothing when it already is).</summary>
    public void ToBFloat16()
    {
        if (!_inBFloat16)
        {
            _model.to(ScalarType.BFloat16);
            _inBFloat16 = true;
        }
    }

    /// <summary>Turns the module back into float32 holding exactly the masters (nothing when it already is float32).</summary>
    public void ToFloat32()
    {
        if (!_inBFloat16)
        {
            return;
        }

        _model.to(ScalarType.Float32);
        _inBFloat16 = false;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var state = _model.state_dict();
        foreach (var (name, master) in Decay.Concat(NoDecay))
        {
            state[name].copy_(master);
        }

        foreach (var (name, copy) in _frozen)
        {
            state[name].copy_(copy);
        }
    }

    /// <summary>
    /// After a backward pass: adds the module's bfloat16 gradients into the masters' float32 ones (summing in float32,
    /// so gradient accumulation over several batches does not round at each one) and frees the bfloat16 gradients.
    /// </summary>
    public void CollectGradients()
    {
        // TorchSharp wraps the results of in-place operations in new tensor objects: the scope frees them each step.
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var parameters = _model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var (name, master) in Decay.Concat(NoDecay))
        {
            var parameter = parameters[name];
            using var gradient = parameter.grad;
            if (gradient is null)
            {
                continue;
            }

            using var current = master.grad;
            if (current is null)
            {
                using var float32 = gradient.to(ScalarType.Float32);
                master.grad = float32;
            }
            else
            {
                current.add_(gradient);
            }

            parameter.grad = null;
        }
    }

    /// <summary>After the optimizer stepped the masters: rounds them into the module's bfloat16 weights.</summary>
    public void Refresh()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var parameters = _model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var (name, master) in Decay.Concat(NoDecay))
        {
            parameters[name].copy_(master);
        }
    }

    /// <summary>Puts the module back into float32 with the masters' values, then frees the masters.</summary>
    public void Dispose()
    {
        ToFloat32();
        foreach (var tensor in Parameters.Concat(_frozen.Values))
        {
            tensor.Dispose();
        }
    }
}
