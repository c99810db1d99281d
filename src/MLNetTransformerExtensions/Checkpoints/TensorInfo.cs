namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>One tensor's entry in a safetensors header, checked against the file but with its data not read.</summary>
/// <param name="DType">The dtype as the file spells it: <c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>I64</c>, ...</param>
/// <param name="Shape">The dimensions, outermost first; empty for a scalar.</param>
/// <param name="DataBegin">Where the data starts, in bytes from the start of the data section (after the header).</param>
/// <param name="DataEnd">Where the data ends (exclusive), in bytes from the start of the data section.</param>
public sealed record TensorInfo(string DType, IReadOnlyList<long> Shape, long DataBegin, long DataEnd)
{
    /// <summary>The number of elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (long dimension in Shape)
                count *= dimension;
            return count;
        }
    }
}
